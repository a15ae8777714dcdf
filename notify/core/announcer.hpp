// SPDX-License-Identifier: GPL-2.0-or-later
// Announces an instance's addresses on its interface: gratuitous ARP for
// IPv4, unsolicited neighbour advertisements for IPv6 (DESIGN.md,
// "Announcer"), sent on an AF_PACKET socket created inside the instance's
// network namespace.
//
// A session is prepared (packet socket first, then the interface and its
// addresses read with libnl-route, both inside the namespace), then its
// packets go out on a schedule: `delay_ms`, then `count` rounds
// `interval_ms` apart, every packet at least 1/`rate_pps` after the one
// before it on that interface. The dispatcher sends what is due at once
// (the first frame leaves before the state is made durable) and the rest
// after the journal line, so repeats never delay recording the state.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "announce_frames.hpp"
#include "ip_address.hpp"
#include "kanotify/config.hpp"
#include "kanotify/error.hpp"
#include "kanotify/event.hpp"
#include "packet_sockets.hpp"
#include "unique_fd.hpp"

namespace kanotify {

using AnnounceClock = std::chrono::steady_clock;

// What the kernel says about the interface, read inside its namespace.
struct InterfaceFacts {
    std::string name;
    int ifindex = 0;
    Mac mac{};
    bool admin_up = false;      // IFF_UP
    bool running = false;       // IFF_RUNNING (carrier, operstate up or unknown)
    std::string operstate;      // "up", "down", "lowerlayerdown", "unknown", ...
    bool forwarding = false;    // net.ipv6.conf.IF.forwarding: the NA Router flag
    struct Address {
        IpAddress address;
        std::uint32_t flags = 0;  // IFA_F_*
        int scope = 0;            // RT_SCOPE_*
    };
    std::vector<Address> addresses;
};

enum class PacketKind { arp_request, arp_reply, neighbour_advert };

struct AddressOutcome {
    std::string address;        // as configured, or as found on the interface
    std::string result;         // sent | partial | failed | skipped
    std::uint64_t planned = 0;  // packets scheduled
    std::uint64_t sent = 0;
    std::uint64_t errors = 0;
    std::string reason;         // why skipped, or the last send error
};

// One packet of the schedule.
struct ScheduledPacket {
    std::chrono::microseconds at{};  // after the session's start
    std::size_t address = 0;         // index into the outcomes
    PacketKind kind = PacketKind::arp_request;
};

// Whether a transition to `state` of an instance with these settings is
// announced on the wire: MASTER, and MASTER_RX_LOWER_PRI (a split brain
// ended), of an instance with a [garp] table sending at least one packet.
[[nodiscard]] bool announces(State state, const InstanceSettings& settings);

// The pure part: which addresses are announced (the others reported with
// a reason) and when each packet goes. `configured` empty: every global
// address of the interface.
struct AnnouncePlan {
    std::vector<AddressOutcome> outcomes;
    std::vector<IpAddress> addresses;       // parallel to outcomes (skipped ones too)
    std::vector<ScheduledPacket> packets;   // in time order
    std::string error;                      // the interface cannot announce at all
};
[[nodiscard]] AnnouncePlan plan_announcement(const InterfaceFacts& facts, const std::vector<std::string>& configured,
                                             const GarpSettings& settings);

// Reads the interface inside `netns` ("" = ours) through libnl-route.
[[nodiscard]] Result<InterfaceFacts> discover_interface(const std::string& netns, const std::string& interface);

class AnnounceSession {
  public:
    // Never fails: what went wrong is in outcomes() and error(). Starts the
    // clock the schedule counts from at `start`. The packet socket comes
    // from `sockets`, shared with the batch's other sessions in the same
    // namespace.
    static AnnounceSession prepare(const std::string& netns, const std::string& interface,
                                   const std::vector<std::string>& configured, const GarpSettings& settings,
                                   AnnounceClock::time_point start, PacketSockets& sockets);

    AnnounceSession(AnnounceSession&&) noexcept = default;
    AnnounceSession& operator=(AnnounceSession&&) noexcept = default;
    // A socket still held (a session dropped unfinished) is closed off this
    // thread, as settle() does.
    ~AnnounceSession();

    // Sends every packet due by now; returns without waiting.
    void send_due();
    // When the next packet is due; none when the session is done.
    [[nodiscard]] std::optional<AnnounceClock::time_point> next_due() const;
    // Sleeps and sends until the schedule is done, then closes the socket.
    void finish();
    // Stops at once: the packets not sent yet are dropped, the socket is
    // closed, and the outcomes say what went out (a refresh cut short by a
    // state other than MASTER).
    void abandon();

    [[nodiscard]] const std::vector<AddressOutcome>& outcomes() const { return plan_.outcomes; }
    [[nodiscard]] const std::string& error() const { return plan_.error; }
    [[nodiscard]] const std::string& interface() const { return interface_; }
    [[nodiscard]] bool forwarding() const { return facts_.forwarding; }
    // What the kernel said about the interface; null when it could not be
    // read (error() says why).
    [[nodiscard]] const InterfaceFacts* facts() const { return facts_read_ ? &facts_ : nullptr; }
    [[nodiscard]] std::uint64_t packets_sent() const;
    [[nodiscard]] std::uint64_t packet_errors() const;

  private:
    AnnounceSession() = default;
    void send(const ScheduledPacket& packet);
    void settle();
    void release_socket() noexcept;

    std::string interface_;
    InterfaceFacts facts_;
    bool facts_read_ = false;
    AnnouncePlan plan_;
    std::shared_ptr<const UniqueFd> socket_;  // shared with the batch's PacketSockets
    AnnounceClock::time_point start_{};
    // Pacing holds on the wire too: a packet sent late pushes the next one.
    std::chrono::microseconds gap_{};
    std::optional<AnnounceClock::time_point> last_sent_;
    std::size_t next_ = 0;
};

// Sleeps and sends until every session is done, the earliest packet first,
// so several instances' announcements interleave rather than queue.
void finish_all(const std::vector<AnnounceSession*>& sessions);

}  // namespace kanotify
