// SPDX-License-Identifier: GPL-2.0-or-later
// The addresses configured on a namespace's interfaces, read with one
// rtnetlink dump. The decoder is a pure function over received bytes.
//
// Why raw rtnetlink and not libnl here: the argv front-end is a fresh
// process per transition, and linking libnl-route loads it (and libnl-3)
// into every invocation, configured addresses or not. Two fixed dumps with
// bounds-checked attribute walking are a few dozen lines.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ip_address.hpp"
#include "kanotify/error.hpp"

namespace kanotify {

struct KernelAddress {
    int ifindex = 0;
    std::string ifname;  // filled from the link dump
    IpAddress address;
    std::uint32_t flags = 0;  // IFA_F_*
};

struct DumpProgress {
    bool done = false;          // NLMSG_DONE seen
    bool interrupted = false;   // NLM_F_DUMP_INTR: the table changed during the dump
};

// Decodes one recv() worth of RTM_NEWADDR messages, appending to `out`.
[[nodiscard]] Result<DumpProgress> decode_address_dump(std::span<const std::uint8_t> bytes,
                                                       std::vector<KernelAddress>& out);
// Decodes RTM_NEWLINK messages into (index, name) pairs.
[[nodiscard]] Result<DumpProgress> decode_link_dump(std::span<const std::uint8_t> bytes,
                                                    std::vector<std::pair<int, std::string>>& out);

// One change the kernel multicasts to RTNLGRP_LINK and RTNLGRP_IPV{4,6}_IFADDR
// listeners (what `ip monitor address link` prints).
struct RtnlEvent {
    enum class Type { address_added, address_removed, link_changed, link_removed };
    Type type = Type::address_added;
    int ifindex = 0;
    std::string ifname;   // link events: the link's (current) name
    IpAddress address;    // address events, with the prefix length
};

// Decodes one recv() worth of RTM_{NEW,DEL}{ADDR,LINK} notifications,
// appending to `out`; other message types are passed over.
[[nodiscard]] Result<DumpProgress> decode_rtnl_events(std::span<const std::uint8_t> bytes,
                                                      std::vector<RtnlEvent>& out);

// Every address in `netns` ("" = ours), with interface names; with an
// `interface`, only that interface's (one address dump, its index looked
// up directly: no link dump, whose messages carry every link's statistics
// and which reconciliation paid on a MASTER's path to its first frame).
[[nodiscard]] Result<std::vector<KernelAddress>> list_addresses(const std::string& netns,
                                                                const std::string& interface = {});

// Links (index, name) and addresses, read consistently.
struct RtnlSnapshot {
    std::vector<std::pair<int, std::string>> links;
    std::vector<KernelAddress> addresses;
};
// Through an open NETLINK_ROUTE socket (already in its namespace) that is
// not subscribed to multicast groups: the dump's replies would be mixed
// with notifications.
[[nodiscard]] Result<RtnlSnapshot> snapshot_on(int fd);

}  // namespace kanotify
