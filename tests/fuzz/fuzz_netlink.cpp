// SPDX-License-Identifier: GPL-2.0-or-later
// Fuzzes the rtnetlink dump decoders (one recv() worth of RTM_NEWADDR or
// RTM_NEWLINK messages), the notification decoder of the neutron monitor
// (RTM_{NEW,DEL}{ADDR,LINK}) and the address parser that configured
// addresses and decoded ones meet in. Every input goes to all four.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ip_address.hpp"
#include "rtnl_addresses.hpp"

using namespace kanotify;

namespace {

constexpr std::size_t max_input = 64 * 1024;
constexpr std::size_t netlink_header = 16;  // sizeof(nlmsghdr)
constexpr std::size_t ifaddrmsg_size = 8;
constexpr std::size_t ifinfomsg_size = 16;
constexpr std::size_t rtattr_size = 4;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

bool all_of(std::string_view text, std::string_view allowed) {
    return text.find_first_not_of(allowed) == std::string_view::npos;
}

// An accepted address is nothing but an address, prints canonically and
// parses back to itself.
void check_address(const IpAddress& address) {
    check(address.family == AF_INET || address.family == AF_INET6);
    int max = address.family == AF_INET ? 32 : 128;
    if (address.family == AF_INET)
        for (std::size_t i = 4; i < address.bytes.size(); ++i)
            check(address.bytes[i] == 0);
    if (address.prefix > max)
        return;  // only the kernel's side can say this; str() would not parse
    check(address.prefix >= -1);
    auto text = address.str();
    auto again = parse_ip_address(text);
    check(again.has_value() && again->same_address(address) && again->prefix == address.prefix);
    check(again->str() == text);
}

void ip_text(std::string_view text) {
    auto address = parse_ip_address(text);
    if (!address) {
        check(!address.error().message.empty());
        return;
    }
    check(all_of(text, "0123456789abcdefABCDEF.:/"));
    check(text.find('/') == text.rfind('/'));
    check(address->prefix >= -1 && address->prefix <= (address->family == AF_INET ? 32 : 128));
    check(address->prefix == -1 || text.find('/') != std::string_view::npos);
    check_address(*address);
}

void addresses(std::span<const std::uint8_t> bytes) {
    std::vector<KernelAddress> out(1);  // the decoder appends, never touches what was there
    out[0].ifindex = -7;
    auto progress = decode_address_dump(bytes, out);
    check(!out.empty() && out[0].ifindex == -7);
    // At most one address per message, and a message is a header and an ifaddrmsg at least.
    check(out.size() - 1 <= bytes.size() / (netlink_header + ifaddrmsg_size + rtattr_size));
    if (!progress) {
        check(!progress.error().message.empty());
        return;
    }
    for (std::size_t i = 1; i < out.size(); ++i) {
        check(out[i].ifname.empty());
        check(out[i].address.prefix >= 0 && out[i].address.prefix <= 255);
        check_address(out[i].address);
    }
}

void links(std::span<const std::uint8_t> bytes) {
    std::vector<std::pair<int, std::string>> out;
    auto progress = decode_link_dump(bytes, out);
    check(out.size() <= bytes.size() / (netlink_header + ifinfomsg_size));
    if (!progress) {
        check(!progress.error().message.empty());
        return;
    }
    for (const auto& [index, name] : out) {
        (void)index;
        check(name.find('\0') == std::string::npos);
        check(name.size() < bytes.size());
    }
}

void events(std::span<const std::uint8_t> bytes) {
    std::vector<RtnlEvent> out;
    auto progress = decode_rtnl_events(bytes, out);
    // At most one event per message.
    check(out.size() <= bytes.size() / (netlink_header + ifaddrmsg_size));
    if (!progress) {
        check(!progress.error().message.empty());
        return;
    }
    for (const auto& e : out) {
        bool address = e.type == RtnlEvent::Type::address_added || e.type == RtnlEvent::Type::address_removed;
        if (address) {
            check(e.ifname.empty());
            check_address(e.address);
        } else {
            check(e.ifname.find('\0') == std::string::npos);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    // The decoders read recv() buffers: give them their own copy, so that a
    // read past the end is one past a heap block AddressSanitizer watches.
    std::vector<std::uint8_t> buffer(data, data + size);
    std::span<const std::uint8_t> bytes(buffer.data(), buffer.size());
    addresses(bytes);
    links(bytes);
    events(bytes);
    ip_text(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
