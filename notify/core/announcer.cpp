// SPDX-License-Identifier: GPL-2.0-or-later
#include "announcer.hpp"

// glibc's <net/if.h> before any <linux/...> header (libnl's included): in
// that order the kernel headers step aside for glibc's IFF_* definitions.
#include <net/if.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <thread>

#include <fmt/format.h>

#include "effective_capability.hpp"
#include "kanotify/event.hpp"
#include "libnl_api.hpp"
#include "netns.hpp"

namespace kanotify {

namespace {

// IFA_F_* (linux/if_addr.h), spelled here to keep that header's macros out
// of a unity build.
constexpr std::uint32_t ifa_f_dadfailed = 0x08;
constexpr std::uint32_t ifa_f_tentative = 0x40;

std::string operstate_name(std::uint8_t state) {
    switch (state) {
    case 0: return "unknown";
    case 1: return "notpresent";
    case 2: return "down";
    case 3: return "lowerlayerdown";
    case 4: return "testing";
    case 5: return "dormant";
    case 6: return "up";
    default: return fmt::format("{}", state);
    }
}

// The interface's IPv6 forwarding switch, read in the current namespace
// (/proc/sys/net follows the reading thread's namespace).
Result<bool> read_forwarding(const std::string& interface) {
    auto path = fmt::format("/proc/sys/net/ipv6/conf/{}/forwarding", interface);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return system_error(fmt::format("cannot read {}", quote(path)), errno);
    char buffer[16] = {};
    auto n = ::read(fd.get(), buffer, sizeof buffer - 1);
    if (n <= 0)
        return system_error(fmt::format("cannot read {}", quote(path)), n < 0 ? errno : EIO);
    return buffer[0] != '0';
}

// Everything the announcement needs from the kernel, read with libnl in
// the current namespace.
Result<InterfaceFacts> read_facts(const std::string& interface) {
    auto api = libnl_api();
    if (!api)
        return tl::unexpected(api.error());
    const LibnlApi& nl = **api;
    NlSocketPtr sk(nl.nl_socket_alloc(), NlSocketCloser{&nl});
    if (!sk)
        return make_error(ErrorKind::system, "cannot allocate a netlink socket");
    if (int r = nl.nl_connect(sk.get(), NETLINK_ROUTE); r < 0)
        return libnl_error(nl, "cannot open an rtnetlink socket", r);
    // One RTM_GETLINK for this interface, not a dump of every link: the
    // first frame waits for this.
    rtnl_link* found = nullptr;
    if (int r = nl.rtnl_link_get_kernel(sk.get(), 0, interface.c_str(), &found); r < 0) {
        if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
            return make_error(ErrorKind::invalid, fmt::format("there is no interface {}", quote(interface)));
        return libnl_error(nl, "cannot read the interface", r);
    }
    RtnlLinkPtr link(found, RtnlLinkCloser{&nl});
    if (!link)
        return make_error(ErrorKind::invalid, fmt::format("there is no interface {}", quote(interface)));

    InterfaceFacts facts;
    facts.name = interface;
    facts.ifindex = nl.rtnl_link_get_ifindex(link.get());
    auto flags = nl.rtnl_link_get_flags(link.get());
    facts.admin_up = (flags & IFF_UP) != 0;
    facts.running = (flags & IFF_RUNNING) != 0;
    facts.operstate = operstate_name(nl.rtnl_link_get_operstate(link.get()));
    nl_addr* lladdr = nl.rtnl_link_get_addr(link.get());
    if (nl.rtnl_link_get_arptype(link.get()) != ARPHRD_ETHER || !lladdr || nl.nl_addr_get_len(lladdr) != 6)
        return make_error(ErrorKind::invalid,
                          fmt::format("interface {} is not an Ethernet interface (link type {}): announcements "
                                      "are Ethernet frames",
                                      quote(interface), nl.rtnl_link_get_arptype(link.get())));
    std::memcpy(facts.mac.data(), nl.nl_addr_get_binary_addr(lladdr), 6);

    nl_cache* raw = nullptr;
    if (int r = nl.rtnl_addr_alloc_cache(sk.get(), &raw); r < 0)
        return libnl_error(nl, "cannot list the addresses", r);
    NlCachePtr addresses(raw, NlCacheCloser{&nl});
    bool any_ipv6 = false;
    for (nl_object* o = nl.nl_cache_get_first(addresses.get()); o; o = nl.nl_cache_get_next(o)) {
        auto* a = reinterpret_cast<rtnl_addr*>(o);
        if (nl.rtnl_addr_get_ifindex(a) != facts.ifindex)
            continue;
        nl_addr* local = nl.rtnl_addr_get_local(a);
        int family = nl.rtnl_addr_get_family(a);
        if (!local || (family != AF_INET && family != AF_INET6))
            continue;
        auto length = nl.nl_addr_get_len(local);
        if (length != (family == AF_INET ? 4u : 16u))
            continue;
        InterfaceFacts::Address entry;
        entry.address.family = family;
        std::memcpy(entry.address.bytes.data(), nl.nl_addr_get_binary_addr(local), length);
        entry.address.prefix = nl.rtnl_addr_get_prefixlen(a);
        entry.flags = nl.rtnl_addr_get_flags(a);
        entry.scope = nl.rtnl_addr_get_scope(a);
        any_ipv6 = any_ipv6 || family == AF_INET6;
        facts.addresses.push_back(entry);
    }
    if (any_ipv6) {
        auto forwarding = read_forwarding(interface);
        if (!forwarding)
            return tl::unexpected(forwarding.error());
        facts.forwarding = *forwarding;
    }
    return facts;
}

std::string where(const std::string& netns, const std::string& interface) {
    return netns.empty() ? fmt::format("interface {}", quote(interface))
                         : fmt::format("interface {} in namespace {}", quote(interface), quote(netns));
}

}  // namespace

bool announces(State state, const InstanceSettings& settings) {
    return (state == State::master || state == State::master_rx_lower_pri) && settings.garp.enabled &&
           settings.garp.count > 0;
}

AnnouncePlan plan_announcement(const InterfaceFacts& facts, const std::vector<std::string>& configured,
                               const GarpSettings& settings) {
    AnnouncePlan plan;
    auto add = [&](const IpAddress& address, std::string shown) {
        AddressOutcome o;
        o.address = std::move(shown);
        o.result = "skipped";
        plan.outcomes.push_back(std::move(o));
        plan.addresses.push_back(address);
        return plan.outcomes.size() - 1;
    };
    // Which addresses: the configured ones, each checked against the
    // interface; else every global address the interface has.
    std::vector<std::size_t> announced;
    auto consider = [&](std::size_t i) {
        const auto& address = plan.addresses[i];
        auto found = std::find_if(facts.addresses.begin(), facts.addresses.end(),
                                  [&](const auto& a) { return a.address.same_address(address); });
        auto& outcome = plan.outcomes[i];
        if (found == facts.addresses.end())
            outcome.reason = fmt::format("not configured on {}", facts.name);
        else if (address.family == AF_INET6 && (found->flags & ifa_f_dadfailed))
            outcome.reason = "duplicate address detection failed for it";
        else if (address.family == AF_INET6 && (found->flags & ifa_f_tentative))
            outcome.reason = "tentative: duplicate address detection has not finished";
        else
            announced.push_back(i);
    };
    if (!configured.empty()) {
        for (const auto& text : configured) {
            auto parsed = parse_ip_address(text);
            if (!parsed) {
                AddressOutcome o;
                o.address = quote(text);
                o.result = "skipped";
                o.reason = parsed.error().message;
                plan.outcomes.push_back(std::move(o));
                plan.addresses.push_back(IpAddress{});
                continue;
            }
            consider(add(*parsed, parsed->str()));
        }
    } else {
        for (const auto& a : facts.addresses)
            if (a.scope == RT_SCOPE_UNIVERSE) {
                auto shown = a.address;
                shown.prefix = -1;
                consider(add(a.address, shown.str()));
            }
        if (plan.outcomes.empty())
            plan.error = fmt::format("{} has no global address to announce", facts.name);
    }
    if (!facts.admin_up)
        plan.error = fmt::format("{} is down", facts.name);
    else if (!facts.running)
        plan.error = fmt::format("{} is not running (operstate {}, no carrier)", facts.name, facts.operstate);
    if (!plan.error.empty()) {
        for (auto i : announced) {
            plan.outcomes[i].result = "failed";
            plan.outcomes[i].reason = plan.error;
        }
        return plan;
    }

    // The schedule: round r is due delay + r * interval after the start,
    // and no packet leaves sooner than 1/rate_pps after the one before.
    using std::chrono::microseconds;
    auto gap = microseconds(1000000 / std::max<std::int64_t>(settings.rate_pps, 1));
    std::optional<microseconds> previous;
    for (std::int64_t round = 0; round < settings.count; ++round) {
        auto nominal = microseconds((settings.delay_ms + round * settings.interval_ms) * 1000);
        for (auto i : announced) {
            std::vector<PacketKind> kinds;
            if (plan.addresses[i].family == AF_INET6)
                kinds = {PacketKind::neighbour_advert};
            else if (settings.mode == "reply")
                kinds = {PacketKind::arp_reply};
            else if (settings.mode == "both")
                kinds = {PacketKind::arp_request, PacketKind::arp_reply};
            else
                kinds = {PacketKind::arp_request};
            for (auto kind : kinds) {
                auto at = previous ? std::max(nominal, *previous + gap) : nominal;
                plan.packets.push_back({at, i, kind});
                previous = at;
                ++plan.outcomes[i].planned;
            }
        }
    }
    for (auto i : announced)
        if (plan.outcomes[i].planned == 0)
            plan.outcomes[i].reason = "count is 0";
    return plan;
}

Result<InterfaceFacts> discover_interface(const std::string& netns, const std::string& interface) {
    if (auto ok = validate_interface(interface); !ok)
        return tl::unexpected(ok.error());
    Result<InterfaceFacts> facts = make_error(ErrorKind::system, "not read");
    auto entered = in_netns(netns, [&] { facts = read_facts(interface); });
    if (!entered)
        return tl::unexpected(entered.error());
    if (!facts)
        return make_error(facts.error().kind, fmt::format("{}: {}", where(netns, interface), facts.error().message));
    return facts;
}

AnnounceSession AnnounceSession::prepare(const std::string& netns, const std::string& interface,
                                         const std::vector<std::string>& configured, const GarpSettings& settings,
                                         AnnounceClock::time_point start, PacketSockets& sockets) {
    AnnounceSession session;
    session.interface_ = interface;
    session.start_ = start;
    auto fail = [&](const Error& e) {
        session.plan_.error = e.message;
        for (const auto& text : configured) {
            AddressOutcome o;
            o.address = quote(text);
            o.result = "failed";
            o.reason = e.message;
            session.plan_.outcomes.push_back(std::move(o));
        }
        return std::move(session);
    };
    if (interface.empty())
        return fail(Error{ErrorKind::config, {}, "no interface is configured for the instance"});
    if (auto ok = validate_interface(interface); !ok)
        return fail(ok.error());
    // The packet socket first (the one step that needs CAP_NET_RAW), then
    // the kernel's view: both inside the namespace, in one visit.
    Result<std::shared_ptr<const UniqueFd>> socket = make_error(ErrorKind::system, "not opened");
    Result<InterfaceFacts> facts = make_error(ErrorKind::system, "not read");
    auto entered = in_netns(netns, [&] {
        socket = sockets.here();
        if (socket)
            facts = read_facts(interface);
    });
    if (!entered)
        return fail(entered.error());
    if (!socket)
        return fail(Error{socket.error().kind, {},
                          fmt::format("{}: {}", where(netns, interface), socket.error().message)});
    session.socket_ = std::move(*socket);
    if (!facts) {
        session.socket_.reset();
        return fail(
            Error{facts.error().kind, {}, fmt::format("{}: {}", where(netns, interface), facts.error().message)});
    }
    session.facts_ = std::move(*facts);
    session.facts_read_ = true;
    session.plan_ = plan_announcement(session.facts_, configured, settings);
    session.gap_ = std::chrono::microseconds(1000000 / std::max<std::int64_t>(settings.rate_pps, 1));
    if (session.plan_.packets.empty())
        session.socket_.reset();
    return session;
}

void AnnounceSession::send(const ScheduledPacket& packet) {
    const auto& address = plan_.addresses[packet.address];
    auto& outcome = plan_.outcomes[packet.address];
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = facts_.ifindex;
    to.sll_halen = 6;
    ssize_t n = 0;
    std::size_t size = 0;
    if (packet.kind == PacketKind::neighbour_advert) {
        Ipv6Bytes target{};
        std::copy_n(address.bytes.begin(), 16, target.begin());
        auto frame = build_unsolicited_na(facts_.mac, target, facts_.forwarding);
        to.sll_protocol = htons(ETH_P_IPV6);
        std::copy_n(frame.begin(), 6, to.sll_addr);
        size = frame.size();
        n = ::sendto(socket_->get(), frame.data(), size, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    } else {
        Ipv4Bytes target{};
        std::copy_n(address.bytes.begin(), 4, target.begin());
        auto frame = build_gratuitous_arp(packet.kind == PacketKind::arp_reply ? ArpOp::reply : ArpOp::request,
                                          facts_.mac, target);
        to.sll_protocol = htons(ETH_P_ARP);
        std::copy_n(frame.begin(), 6, to.sll_addr);
        size = frame.size();
        n = ::sendto(socket_->get(), frame.data(), size, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    }
    if (n == static_cast<ssize_t>(size)) {
        ++outcome.sent;
    } else {
        ++outcome.errors;
        outcome.reason = n < 0 ? fmt::format("send: {}", std::strerror(errno)) : "send: short write";
    }
}

void AnnounceSession::send_due() {
    if (!socket_)
        return;
    for (auto now = AnnounceClock::now(); next_ < plan_.packets.size() && *next_due() <= now;
         now = AnnounceClock::now()) {
        send(plan_.packets[next_++]);
        last_sent_ = now;
    }
    if (next_ == plan_.packets.size())
        settle();
}

std::optional<AnnounceClock::time_point> AnnounceSession::next_due() const {
    if (!socket_ || next_ >= plan_.packets.size())
        return std::nullopt;
    auto due = start_ + plan_.packets[next_].at;
    return last_sent_ ? std::max(due, *last_sent_ + gap_) : due;
}

void AnnounceSession::settle() {
    // Closing a packet socket waits for an RCU grace period: never on this
    // thread (packet_sockets.hpp). The batch's PacketSockets closes it when
    // the batch ends; a session that outlived its batch hands it over.
    release_socket();
    for (auto& o : plan_.outcomes)
        if (o.planned > 0)
            o.result = o.sent == o.planned ? "sent" : o.sent == 0 ? "failed" : "partial";
}

void AnnounceSession::release_socket() noexcept {
    if (socket_.use_count() == 1) {
        try {
            std::vector<std::shared_ptr<const UniqueFd>> last;
            last.push_back(std::move(socket_));
            close_in_background(std::move(last));
        } catch (const std::bad_alloc&) {
            // No memory for the hand-over: closed below, on this thread.
        }
    }
    socket_.reset();
}

AnnounceSession::~AnnounceSession() { release_socket(); }

void AnnounceSession::finish() {
    while (auto due = next_due()) {
        std::this_thread::sleep_until(*due);
        send_due();
    }
    if (socket_)
        settle();
}

void AnnounceSession::abandon() {
    if (socket_)
        settle();
}

std::uint64_t AnnounceSession::packets_sent() const {
    std::uint64_t n = 0;
    for (const auto& o : plan_.outcomes)
        n += o.sent;
    return n;
}

std::uint64_t AnnounceSession::packet_errors() const {
    std::uint64_t n = 0;
    for (const auto& o : plan_.outcomes)
        n += o.errors;
    return n;
}

void finish_all(const std::vector<AnnounceSession*>& sessions) {
    for (;;) {
        AnnounceSession* earliest = nullptr;
        for (auto* s : sessions)
            if (auto due = s->next_due(); due && (!earliest || *due < *earliest->next_due()))
                earliest = s;
        if (!earliest)
            break;
        std::this_thread::sleep_until(*earliest->next_due());
        earliest->send_due();
    }
    for (auto* s : sessions)
        s->finish();  // settles the ones with nothing left
}

}  // namespace kanotify
