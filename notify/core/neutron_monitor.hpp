// SPDX-License-Identifier: GPL-2.0-or-later
// The parts of `kanotify monitor` (the drop-in for neutron's
// neutron-keepalived-state-change) that are policy rather than plumbing:
// its command line, which netlink changes move the router's state, when a
// failed notification is tried again, and the files and processes it
// touches. cli/cmd_monitor.cpp drives them from one poll() loop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ip_address.hpp"
#include "kanotify/error.hpp"
#include "rtnl_addresses.hpp"
#include "unique_fd.hpp"

namespace kanotify {

// What the L3 agent passes (every neutron release), plus kanotify's own.
struct MonitorOptions {
    std::string router_id;
    std::string netns;  // empty: the namespace we were started in
    std::string conf_dir;
    std::string log_file;
    std::string interface;
    std::string cidr;  // kept as text: an invalid one is reported at run time, as upstream does
    std::string pid_file;
    std::string state_path;
    std::string user;
    std::string group;
    bool enable_conntrackd = false;
    bool debug = false;
    // kanotify's: "current" (primary/backup), "legacy" (master/backup,
    // agents before 17.0); empty when not given on the command line.
    std::string neutron_state_names;
    bool announce_non_ha = false;          // --announce_non_ha_addresses
    std::chrono::milliseconds initial_timeout{3000};
    std::vector<std::string> ignored;      // unknown flags, reported at debug level
};

// Both `--flag=value` and `--flag value`; `-` and `_` are the same inside a
// flag name (neutron spells --log-file with a dash, the rest with
// underscores). Unknown flags are ignored, as upstream's parsers do; an
// unknown `--flag` followed by a word that is not a flag takes it as value.
// `args` excludes the program name.
[[nodiscard]] Result<MonitorOptions> parse_monitor_args(std::span<char* const> args);

// The flags without which the monitor cannot do its job, and the shape of
// every value it uses to build a path, a header or a log line.
[[nodiscard]] Result<void> validate_monitor_options(const MonitorOptions& options);

// `--monitor_cidr` as neutron compares it: an address without a prefix is a
// host route (/32, /128), host bits are kept.
[[nodiscard]] Result<IpAddress> parse_monitor_cidr(std::string_view text);

// Whether the router's VIP (the cidr on the HA interface) is configured,
// from a snapshot and then from the kernel's notifications.
class VipTracker {
  public:
    enum class Change { none, changed, resync };

    VipTracker(std::string interface, IpAddress cidr) : interface_(std::move(interface)), cidr_(cidr) {}

    // Sets the state from a full view of the namespace.
    void reset(const RtnlSnapshot& snapshot);
    // `changed`: present() flipped. `resync`: the HA interface appeared,
    // was renamed or replaced, so only a fresh snapshot tells the truth.
    [[nodiscard]] Change apply(const RtnlEvent& event);

    [[nodiscard]] bool present() const noexcept { return present_; }
    [[nodiscard]] int ifindex() const noexcept { return ifindex_; }

  private:
    [[nodiscard]] bool is_vip(const IpAddress& address) const noexcept {
        return address.same_address(cidr_) && address.prefix == cidr_.prefix;
    }
    std::string interface_;
    IpAddress cidr_;
    int ifindex_ = 0;  // 0: the interface does not exist (as far as we know)
    bool present_ = false;
};

// When to try a failed notification again: exponential backoff with
// jitter (a hundred monitors of one node fail together when the agent
// restarts; they must not come back in step), and a newer state replaces
// the one waiting, which is then tried at once.
class RetrySchedule {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds first_delay{10};
    static constexpr std::chrono::milliseconds max_delay{2000};

    void set(std::string state, Clock::time_point now);
    // `jitter` in [0, 1): the fraction of the delay added on top.
    void failed(Clock::time_point now, double jitter);
    // The agent's listen backlog was full (neutron's is 5): it is alive and
    // answering other routers. Retried after busy_delay plus up to as much
    // again, and the backoff does not grow: with 100 routers changing at
    // once, doubling on every full backlog pushed the last of them a
    // second back (p99 135-1,132 ms). An agent that then goes away is
    // backed off from where the delay stood.
    static constexpr std::chrono::milliseconds busy_delay{5};
    void busy(Clock::time_point now, double jitter);
    void delivered() noexcept { state_.reset(); }

    [[nodiscard]] const std::optional<std::string>& pending() const noexcept { return state_; }
    [[nodiscard]] bool due(Clock::time_point now) const noexcept { return state_ && now >= next_; }
    // Milliseconds until due (0 when due now); -1 when nothing waits.
    [[nodiscard]] int wait_ms(Clock::time_point now) const noexcept;
    [[nodiscard]] int failures() const noexcept { return failures_; }

  private:
    std::optional<std::string> state_;
    Clock::time_point next_{};
    std::chrono::milliseconds delay_{first_delay};
    int failures_ = 0;
};

// `<conf_dir>/state` holding exactly `state` (no newline), replaced
// atomically through a temporary file beside it and a rename, never
// following a symlink. `synced`: fsync of the file before the rename and of
// the directory after it. `later`: neither; the caller makes the file
// durable with sync_neutron_state() once the agent has been told (the
// monitor: Monitor::transition says why that order is safe).
enum class StateDurability { synced, later };
[[nodiscard]] Result<void> write_neutron_state(int conf_dir_fd, std::string_view state,
                                               StateDurability durability = StateDurability::synced);
// fsync of `<conf_dir>/state` (never through a symlink) and of the directory.
[[nodiscard]] Result<void> sync_neutron_state(int conf_dir_fd);

// Our pid (no newline, as neutron writes its own) in `path`: written to a
// random temporary name beside it and renamed into place, so a symlink, a
// hard link or a FIFO planted at `path` is replaced, never written through.
[[nodiscard]] Result<void> write_pid_file(const std::string& path, pid_t pid);
// Removes `path` if it still holds `pid` (the agent may have started a
// successor that wrote its own); anything but a regular file is left alone.
void remove_pid_file(const std::string& path, pid_t pid) noexcept;

// `--log-file`, opened for appending: the one file the monitor writes in
// place, as root at first, in a directory the agent's user can write. A
// symlink is refused (O_NOFOLLOW), and so is anything but a regular file
// with one link: a planted hard link would have root append to the file it
// shares, a FIFO would block or swallow the lines.
[[nodiscard]] Result<UniqueFd> open_log_file(const std::string& path);

// A program's end: exit code, or the signal that killed it, and what it
// wrote to stdout and stderr (the first few KiB).
struct CommandOutcome {
    int exit_code = -1;   // -1 when killed
    int signal = 0;
    bool timed_out = false;
    std::string output;
};

// Runs `argv` (argv[0] looked up in PATH, no shell) inside the network
// namespace `netns_fd` (-1: ours), stdin /dev/null, stdout and stderr
// captured, no other descriptor inherited, killed after `timeout`.
[[nodiscard]] Result<CommandOutcome> run_in_netns(int netns_fd, const std::vector<std::string>& argv,
                                                  std::chrono::milliseconds timeout);

// conntrackd's options for a state: commit, flush, resync and bulk-send
// on primary; shorten timers and request a resync on backup.
[[nodiscard]] std::span<const std::string_view> conntrackd_options(bool primary) noexcept;

// A user and group as the agent passes them (numeric ids; names looked up).
struct Credentials {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};
[[nodiscard]] Result<Credentials> resolve_credentials(const std::string& user, const std::string& group);
// setgroups, setgid, setuid, then a check that root cannot be regained.
[[nodiscard]] Result<void> drop_privileges(const Credentials& credentials);

}  // namespace kanotify
