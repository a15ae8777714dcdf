// SPDX-License-Identifier: GPL-2.0-or-later
#include "ip_address.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

#include <fmt/format.h>

#include "kanotify/event.hpp"

namespace kanotify {

std::string IpAddress::str() const {
    char buffer[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, bytes.data(), buffer, sizeof buffer);
    return prefix >= 0 ? fmt::format("{}/{}", buffer, prefix) : std::string(buffer);
}

Result<IpAddress> parse_ip_address(std::string_view text) {
    auto invalid = [&] {
        return make_error(ErrorKind::invalid,
                          fmt::format("address {} is not an IPv4 or IPv6 address with an optional /prefix", quote(text)));
    };
    // inet_pton() reads up to a NUL: "10.0.0.1\0junk" must not pass as 10.0.0.1.
    if (text.empty() || text.size() > INET6_ADDRSTRLEN + 4 || text.find('\0') != std::string_view::npos)
        return invalid();
    IpAddress address;
    auto slash = text.find('/');
    std::string host(text.substr(0, slash));
    if (::inet_pton(AF_INET, host.c_str(), address.bytes.data()) == 1)
        address.family = AF_INET;
    else if (::inet_pton(AF_INET6, host.c_str(), address.bytes.data()) == 1)
        address.family = AF_INET6;
    else
        return invalid();
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        int prefix = -1;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        int max = address.family == AF_INET ? 32 : 128;
        if (digits.empty() || digits.size() > 3 || ec != std::errc() || end != digits.data() + digits.size() ||
            prefix < 0 || prefix > max || digits.front() == '+' || digits.front() == '-')
            return invalid();
        address.prefix = prefix;
    }
    return address;
}

}  // namespace kanotify
