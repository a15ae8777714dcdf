// SPDX-License-Identifier: GPL-2.0-or-later
#include "rtnl_addresses.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "netns.hpp"

namespace kanotify {

namespace {

constexpr std::size_t align(std::size_t n) {
    return (n + 3) & ~std::size_t{3};
}

template <typename T>
T load(const std::uint8_t* p) {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}

// Walks a netlink message stream; `handle` gets each message's type, flags
// and payload. Every length is checked against what is left before use.
template <typename Handle>
Result<DumpProgress> walk(std::span<const std::uint8_t> bytes, Handle handle) {
    DumpProgress progress;
    while (bytes.size() >= sizeof(nlmsghdr)) {
        auto header = load<nlmsghdr>(bytes.data());
        if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > bytes.size())
            return make_error(ErrorKind::system, "malformed netlink message (bad length)");
        auto payload = bytes.subspan(sizeof(nlmsghdr), header.nlmsg_len - sizeof(nlmsghdr));
        if (header.nlmsg_flags & NLM_F_DUMP_INTR)
            progress.interrupted = true;
        if (header.nlmsg_type == NLMSG_DONE) {
            progress.done = true;
            return progress;
        }
        if (header.nlmsg_type == NLMSG_ERROR) {
            if (payload.size() < sizeof(nlmsgerr))
                return make_error(ErrorKind::system, "malformed netlink error message");
            auto error = load<nlmsgerr>(payload.data());
            // The kernel sends -errno; anything else (INT_MIN cannot even be
            // negated) is a broken peer, not an errno to report.
            if (error.error < 0 && error.error > -4096)
                return system_error("the kernel refused the netlink dump", -error.error);
            if (error.error != 0)
                return make_error(ErrorKind::system, fmt::format("malformed netlink error {}", error.error));
        } else if (auto ok = handle(header.nlmsg_type, payload); !ok) {
            return tl::unexpected(ok.error());
        }
        bytes = bytes.subspan(std::min(align(header.nlmsg_len), bytes.size()));
    }
    if (!bytes.empty())
        return make_error(ErrorKind::system, "truncated netlink message");
    return progress;
}

// Calls `handle(type, value)` for each attribute after a fixed header.
template <typename Handle>
Result<void> attributes(std::span<const std::uint8_t> bytes, Handle handle) {
    while (bytes.size() >= sizeof(rtattr)) {
        auto attr = load<rtattr>(bytes.data());
        if (attr.rta_len < sizeof(rtattr) || attr.rta_len > bytes.size())
            return make_error(ErrorKind::system, "malformed netlink attribute");
        handle(attr.rta_type, bytes.subspan(sizeof(rtattr), attr.rta_len - sizeof(rtattr)));
        bytes = bytes.subspan(std::min(align(attr.rta_len), bytes.size()));
    }
    return {};
}

template <typename Body>
Result<void> send_dump(int fd, std::uint16_t type, std::uint32_t sequence) {
    struct {
        nlmsghdr header;
        Body body;  // all zero: every family, every interface
    } request{};
    request.header.nlmsg_len = sizeof request;
    request.header.nlmsg_type = type;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.nlmsg_seq = sequence;
    if (::send(fd, &request, sizeof request, 0) != static_cast<ssize_t>(sizeof request))
        return system_error("cannot send a netlink dump request", errno);
    return {};
}

template <typename Decode>
Result<bool> receive_dump(int fd, Decode decode) {
    std::vector<std::uint8_t> buffer(32768);
    bool interrupted = false;
    while (true) {
        auto n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error("cannot read the netlink dump", errno);
        auto progress = decode(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(n)));
        if (!progress)
            return tl::unexpected(progress.error());
        interrupted = interrupted || progress->interrupted;
        if (progress->done)
            return !interrupted;
    }
}

}  // namespace

namespace {

// The address of one RTM_NEWADDR/RTM_DELADDR payload; nullopt for families
// other than IPv4 and IPv6 and for messages that carry no address.
Result<std::optional<KernelAddress>> decode_address(std::span<const std::uint8_t> payload) {
    if (payload.size() < sizeof(ifaddrmsg))
        return make_error(ErrorKind::system, "malformed address message");
    auto header = load<ifaddrmsg>(payload.data());
    if (header.ifa_family != AF_INET && header.ifa_family != AF_INET6)
        return std::optional<KernelAddress>{};
    std::size_t size = header.ifa_family == AF_INET ? 4 : 16;
    KernelAddress entry;
    entry.ifindex = static_cast<int>(header.ifa_index);
    entry.flags = header.ifa_flags;
    entry.address.family = header.ifa_family;
    entry.address.prefix = header.ifa_prefixlen;
    bool have_local = false, have_address = false;
    std::array<std::uint8_t, 16> address{}, local{};
    auto ok = attributes(payload.subspan(std::min(align(sizeof(ifaddrmsg)), payload.size())),
                         [&](std::uint16_t attr, std::span<const std::uint8_t> value) {
                             // IFA_LOCAL is our own address on point-to-point
                             // links, where IFA_ADDRESS is the peer's.
                             if (attr == IFA_LOCAL && value.size() == size) {
                                 std::memcpy(local.data(), value.data(), size);
                                 have_local = true;
                             } else if (attr == IFA_ADDRESS && value.size() == size) {
                                 std::memcpy(address.data(), value.data(), size);
                                 have_address = true;
                             } else if (attr == IFA_FLAGS && value.size() == 4) {
                                 entry.flags = load<std::uint32_t>(value.data());
                             }
                         });
    if (!ok)
        return tl::unexpected(ok.error());
    if (!have_local && !have_address)
        return std::optional<KernelAddress>{};
    entry.address.bytes = have_local ? local : address;
    return std::optional<KernelAddress>{std::move(entry)};
}

// Index and name of one RTM_NEWLINK/RTM_DELLINK payload.
Result<std::pair<int, std::string>> decode_link(std::span<const std::uint8_t> payload) {
    if (payload.size() < sizeof(ifinfomsg))
        return make_error(ErrorKind::system, "malformed link message");
    auto header = load<ifinfomsg>(payload.data());
    std::string name;
    auto ok = attributes(payload.subspan(std::min(align(sizeof(ifinfomsg)), payload.size())),
                         [&](std::uint16_t attr, std::span<const std::uint8_t> value) {
                             if (attr == IFLA_IFNAME && !value.empty()) {
                                 auto text = std::string_view(reinterpret_cast<const char*>(value.data()),
                                                              value.size());
                                 name = std::string(text.substr(0, text.find('\0')));
                             }
                         });
    if (!ok)
        return tl::unexpected(ok.error());
    return std::pair<int, std::string>{header.ifi_index, std::move(name)};
}

}  // namespace

Result<DumpProgress> decode_address_dump(std::span<const std::uint8_t> bytes, std::vector<KernelAddress>& out) {
    return walk(bytes, [&](std::uint16_t type, std::span<const std::uint8_t> payload) -> Result<void> {
        if (type != RTM_NEWADDR)
            return {};
        auto entry = decode_address(payload);
        if (!entry)
            return tl::unexpected(entry.error());
        if (*entry)
            out.push_back(std::move(**entry));
        return {};
    });
}

Result<DumpProgress> decode_rtnl_events(std::span<const std::uint8_t> bytes, std::vector<RtnlEvent>& out) {
    return walk(bytes, [&](std::uint16_t type, std::span<const std::uint8_t> payload) -> Result<void> {
        if (type == RTM_NEWADDR || type == RTM_DELADDR) {
            auto entry = decode_address(payload);
            if (!entry)
                return tl::unexpected(entry.error());
            if (!*entry)
                return {};
            RtnlEvent event;
            event.type = type == RTM_NEWADDR ? RtnlEvent::Type::address_added : RtnlEvent::Type::address_removed;
            event.ifindex = (*entry)->ifindex;
            event.address = (*entry)->address;
            out.push_back(std::move(event));
        } else if (type == RTM_NEWLINK || type == RTM_DELLINK) {
            auto link = decode_link(payload);
            if (!link)
                return tl::unexpected(link.error());
            RtnlEvent event;
            event.type = type == RTM_NEWLINK ? RtnlEvent::Type::link_changed : RtnlEvent::Type::link_removed;
            event.ifindex = link->first;
            event.ifname = std::move(link->second);
            out.push_back(std::move(event));
        }
        return {};
    });
}

Result<DumpProgress> decode_link_dump(std::span<const std::uint8_t> bytes,
                                      std::vector<std::pair<int, std::string>>& out) {
    return walk(bytes, [&](std::uint16_t type, std::span<const std::uint8_t> payload) -> Result<void> {
        if (type != RTM_NEWLINK)
            return {};
        auto link = decode_link(payload);
        if (!link)
            return tl::unexpected(link.error());
        out.push_back(std::move(*link));
        return {};
    });
}

Result<RtnlSnapshot> snapshot_on(int fd) {
    // The kernel flags a dump that raced a change (NLM_F_DUMP_INTR): retry
    // it a few times rather than decide on a half-old view.
    for (std::uint32_t attempt = 1; attempt <= 4; ++attempt) {
        std::vector<std::pair<int, std::string>> links;
        std::vector<KernelAddress> addresses;
        if (auto ok = send_dump<ifinfomsg>(fd, RTM_GETLINK, attempt * 2); !ok)
            return tl::unexpected(ok.error());
        auto links_ok = receive_dump(fd, [&](auto bytes) { return decode_link_dump(bytes, links); });
        if (!links_ok)
            return tl::unexpected(links_ok.error());
        if (auto ok = send_dump<ifaddrmsg>(fd, RTM_GETADDR, attempt * 2 + 1); !ok)
            return tl::unexpected(ok.error());
        auto addresses_ok = receive_dump(fd, [&](auto bytes) { return decode_address_dump(bytes, addresses); });
        if (!addresses_ok)
            return tl::unexpected(addresses_ok.error());
        if (!*links_ok || !*addresses_ok)
            continue;
        for (auto& entry : addresses)
            for (const auto& [index, name] : links)
                if (index == entry.ifindex)
                    entry.ifname = name;
        return RtnlSnapshot{std::move(links), std::move(addresses)};
    }
    return make_error(ErrorKind::system, "the address table kept changing during the netlink dump");
}

Result<std::vector<KernelAddress>> list_addresses(const std::string& netns, const std::string& interface) {
    auto fd = socket_in_netns(netns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (!fd)
        return tl::unexpected(fd.error());
    if (interface.empty()) {
        auto snapshot = snapshot_on(fd->get());
        if (!snapshot)
            return tl::unexpected(snapshot.error());
        return std::move(snapshot->addresses);
    }
    auto index = interface_index(fd->get(), interface);
    if (!index)
        return tl::unexpected(index.error());
    std::vector<KernelAddress> on_interface;
    if (*index == 0)
        return on_interface;  // no such interface: none of its addresses is there
    for (std::uint32_t attempt = 1; attempt <= 4; ++attempt) {
        std::vector<KernelAddress> addresses;
        if (auto ok = send_dump<ifaddrmsg>(fd->get(), RTM_GETADDR, attempt); !ok)
            return tl::unexpected(ok.error());
        auto complete = receive_dump(fd->get(), [&](auto bytes) { return decode_address_dump(bytes, addresses); });
        if (!complete)
            return tl::unexpected(complete.error());
        if (!*complete)
            continue;  // raced a change (NLM_F_DUMP_INTR): read it again
        for (auto& entry : addresses)
            if (entry.ifindex == *index) {
                entry.ifname = interface;
                on_interface.push_back(std::move(entry));
            }
        return on_interface;
    }
    return make_error(ErrorKind::system, "the address table kept changing during the netlink dump");
}

}  // namespace kanotify
