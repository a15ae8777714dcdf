// SPDX-License-Identifier: GPL-2.0-or-later
// An IPv4 or IPv6 address as configured ("10.0.0.100/24", "2001:db8::1/64",
// prefix optional) and as the kernel reports it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "kanotify/error.hpp"

namespace kanotify {

struct IpAddress {
    int family = 0;  // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};
    int prefix = -1;  // -1: not given

    [[nodiscard]] bool same_address(const IpAddress& other) const noexcept {
        return family == other.family && bytes == other.bytes;
    }
    [[nodiscard]] std::string str() const;
};

[[nodiscard]] Result<IpAddress> parse_ip_address(std::string_view text);

}  // namespace kanotify
