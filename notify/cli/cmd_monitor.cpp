// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify monitor`, and kanotify invoked as neutron-keepalived-state-change:
// the neutron L3 agent's per-router monitor. One process per HA router,
// hundreds per node, so it is one thread around one poll(): a netlink
// socket in the router's namespace, a signalfd, and the timer of a pending
// notification. Nothing else is loaded (no D-Bus, no journald connection).
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <cstring>
#include <ctime>
#include <random>
#include <span>
#include <string>

#include <fmt/format.h>

#include "announcer.hpp"
#include "common.hpp"
#include "http_message.hpp"
#include "kanotify/config.hpp"
#include "kanotify/exit_code.hpp"
#include "netns.hpp"
#include "neutron_monitor.hpp"
#include "rtnl_addresses.hpp"
#include "unix_socket_sink.hpp"

#ifndef KANOTIFY_DEFAULT_CONFIG
#define KANOTIFY_DEFAULT_CONFIG "/etc/kanotify/kanotify.toml"
#endif

namespace kanotify::cli {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// An attempt to reach the agent waits at most this long for it; with the
// signalfd polled between attempts, SIGTERM is served within it.
constexpr std::int64_t notify_timeout_ms = 2000;
constexpr auto conntrackd_timeout = 2000ms;
constexpr auto reopen_delay = 1000ms;

// neutron's log-file lines: "date time pid LEVEL name [-] message". One
// write() per line. Never blocks: the file is a file, and a stderr pipe
// (when no --log-file is given) is used through its own non-blocking open
// file description, so nobody else's view of that pipe changes.
class MonitorLog {
  public:
    [[nodiscard]] Result<void> open_file(const std::string& path) {
        path_ = path;
        return reopen();
    }
    // On failure the file open so far (if any) stays in use.
    [[nodiscard]] Result<void> reopen() {
        if (path_.empty())
            return {};
        auto fd = open_log_file(path_);
        if (!fd)
            return tl::unexpected(fd.error());
        fd_ = std::move(*fd);
        return {};
    }
    void use_stderr() {
        // /proc/self/fd/2 opened anew is a new open file description of the
        // same pipe or file, so O_NONBLOCK stays ours.
        UniqueFd fd(::open("/proc/self/fd/2", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
        if (!fd)
            fd = UniqueFd(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
        fd_ = std::move(fd);
    }
    void set_debug(bool debug) noexcept { debug_ = debug; }
    void set_router(std::string router) { router_ = std::move(router); }

    void info(std::string_view message) { write("INFO", message); }
    void warning(std::string_view message) { write("WARNING", message); }
    void error(std::string_view message) { write("ERROR", message); }
    void debug(std::string_view message) {
        if (debug_)
            write("DEBUG", message);
    }

  private:
    void write(std::string_view level, std::string_view message) {
        if (!fd_)
            return;
        timespec ts{};
        clock_gettime(CLOCK_REALTIME, &ts);
        tm parts{};
        gmtime_r(&ts.tv_sec, &parts);
        char date[24];
        std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &parts);
        auto line = fmt::format("{}.{:03} {} {} kanotify.monitor [-] {}\n", date, ts.tv_nsec / 1000000, ::getpid(),
                                level, message);
        // A full pipe drops the line (EAGAIN); nothing else is possible.
        (void)!::write(fd_.get(), line.data(), line.size());
    }

    std::string path_;
    UniqueFd fd_;
    bool debug_ = false;
    std::string router_;
};

void redirect_to_null(int target) {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return;
    if (null != target) {
        (void)::dup2(null, target);
        ::close(null);
    }
}

// What the agent cannot pass: neutron_state_names (an operator with an
// agent older than 17.0 sets it) and [garp] for announcements, from
// kanotify's configuration file when there is one.
struct FileSettings {
    std::string neutron_state_names = "current";
    GarpSettings garp;
};
FileSettings settings_from_config(MonitorLog& log) {
    FileSettings out;
    struct stat st{};
    if (::stat(KANOTIFY_DEFAULT_CONFIG, &st) != 0)
        return out;
    LoadOptions options;
    options.path = KANOTIFY_DEFAULT_CONFIG;
    options.enforce_owner = ::geteuid() == 0;
    auto config = load_config(options);
    if (!config) {
        // A broken file must not leave the router without a monitor: the
        // agent would respawn it for ever. Say it and use the defaults.
        log.error(fmt::format("ignoring {}: {}; using the defaults (primary/backup)", KANOTIFY_DEFAULT_CONFIG,
                              config.error().message));
        return out;
    }
    out.neutron_state_names = config->neutron_state_names;
    out.garp = config->defaults.garp;
    return out;
}

class Monitor {
  public:
    Monitor(MonitorOptions options, MonitorLog& log)
        : o_(std::move(options)), log_(log), rng_(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(::time(nullptr))) {
        SocketSettings settings;
        settings.path = o_.state_path + "/keepalived-state-change";
        settings.timeout_ms = notify_timeout_ms;
        settings.retries = 0;  // retried here, between polls
        sink_.emplace(std::move(settings));
    }

    int run();

  private:
    [[nodiscard]] Result<void> setup();
    [[nodiscard]] Result<void> open_watch();
    [[nodiscard]] Result<RtnlSnapshot> snapshot();
    std::string initial_state();
    void transition(const std::string& state);
    void sync_conntrack(const std::string& state);
    void try_notify();
    bool read_watch();  // false: the socket failed and was closed
    bool wait_signal(int timeout_ms);
    bool handle_signal();
    void track_links(const RtnlEvent& event);
    void announce(const RtnlEvent& event);
    void send_announcements();
    [[nodiscard]] int announce_wait_ms() const;

    std::string state_word(bool primary) const { return primary ? "primary" : "backup"; }

    MonitorOptions o_;
    MonitorLog& log_;
    std::minstd_rand rng_;
    std::optional<UnixSocketSink> sink_;
    std::optional<IpAddress> cidr_;
    std::optional<VipTracker> tracker_;
    UniqueFd signal_fd_, conf_dir_, netns_fd_, watch_, dump_;
    RetrySchedule retry_;
    std::string current_;  // the last state applied
    std::uint64_t sequence_ = 0;
    bool stop_ = false;
    bool privileged_work_ = false;
    bool dropped_ = false;
    std::optional<Credentials> credentials_;
    Clock::time_point reopen_at_{};
    // --announce_non_ha_addresses: link names by index, sessions sending.
    GarpSettings garp_;
    std::map<int, std::string> links_;
    std::vector<std::unique_ptr<AnnounceSession>> announcing_;
};

Result<void> Monitor::setup() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
        return system_error("cannot block signals", errno);
    signal_fd_ = UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_)
        return system_error("cannot create a signalfd", errno);
    ::signal(SIGPIPE, SIG_IGN);

    // Never through a symlink at its last component, like the state
    // directory: the state file and conntrackd.conf are found there.
    conf_dir_ = UniqueFd(::open(o_.conf_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!conf_dir_) {
        int err = errno;
        auto why = err == ENOTDIR || err == ELOOP ? " (not a directory; a symlink is refused)" : "";
        return system_error(fmt::format("cannot open --conf_dir {}{}", quote(o_.conf_dir), why), err);
    }
    if (auto ok = write_pid_file(o_.pid_file, ::getpid()); !ok)
        return ok;

    auto cidr = parse_monitor_cidr(o_.cidr);
    if (cidr) {
        cidr_ = *cidr;
        tracker_.emplace(o_.interface, *cidr);
    } else {
        log_.error(fmt::format("--monitor_cidr {} is not an address: {}", quote(o_.cidr), cidr.error().message));
    }

    if (o_.neutron_state_names.empty() || o_.announce_non_ha) {
        auto file = settings_from_config(log_);
        if (o_.neutron_state_names.empty())
            o_.neutron_state_names = file.neutron_state_names;
        garp_ = file.garp;
    }

    // conntrackd runs in the namespace as root, as the agent ran it through
    // rootwrap, and announcing needs a packet socket in the namespace: with
    // either on, --user/--group cannot be honoured.
    privileged_work_ = o_.enable_conntrackd || o_.announce_non_ha;
    if (!o_.user.empty() || !o_.group.empty()) {
        auto credentials = resolve_credentials(o_.user, o_.group);
        if (!credentials)
            return tl::unexpected(credentials.error());
        // The agent passes its own uid: a listener at its socket path run by
        // another user (one who could create the path before the agent) is
        // not the agent and gets nothing; root is accepted too.
        auto settings = sink_->settings();
        settings.owner_uid = credentials->uid;
        settings.root_owner_too = true;
        sink_.emplace(std::move(settings));
        bool same = credentials->uid == ::geteuid() && credentials->gid == ::getegid();
        if (!same && privileged_work_)
            log_.info(fmt::format("keeping root (not switching to uid {} gid {}): conntrackd or announcements "
                                  "run inside the namespace",
                                  credentials->uid, credentials->gid));
        else if (!same)
            credentials_ = *credentials;
    }
    return {};
}

Result<void> Monitor::open_watch() {
    watch_.reset();
    dump_.reset();
    if (!o_.netns.empty() && !netns_fd_) {
        auto path = o_.netns.front() == '/' ? o_.netns : "/run/netns/" + o_.netns;
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd)
            return system_error(fmt::format("cannot open network namespace {}", quote(path)), errno);
        netns_fd_ = std::move(fd);
    }
    // Subscribed before the snapshot is taken: a change between the two is
    // then seen as a notification rather than lost.
    auto watch = socket_in_netns(o_.netns, AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (!watch)
        return tl::unexpected(watch.error());
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    local.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (::bind(watch->get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
        return system_error("cannot subscribe to address notifications", errno);
    auto dump = socket_in_netns(o_.netns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (!dump)
        return tl::unexpected(dump.error());
    // A dump that never answers must not hang the monitor.
    timeval tv{2, 0};
    (void)::setsockopt(dump->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    watch_ = std::move(*watch);
    dump_ = std::move(*dump);
    if (credentials_ && !dropped_) {
        // Both sockets exist: nothing needs root any more.
        if (auto ok = drop_privileges(*credentials_); !ok)
            return ok;
        dropped_ = true;
        log_.debug(fmt::format("running as uid {} gid {}", credentials_->uid, credentials_->gid));
    }
    return {};
}

Result<RtnlSnapshot> Monitor::snapshot() {
    if (!dump_)
        return make_error(ErrorKind::unavailable, "no netlink socket in the namespace");
    return snapshot_on(dump_.get());
}

// Read at once; while the namespace or the interface table cannot be read
// (or the cidr is not an address), backup after the bounded timeout.
std::string Monitor::initial_state() {
    auto deadline = Clock::now() + o_.initial_timeout;
    std::string last_error = "the --monitor_cidr is not an address";
    while (tracker_ && !stop_) {
        auto ok = watch_ ? Result<void>{} : open_watch();
        if (ok) {
            auto snap = snapshot();
            if (snap) {
                tracker_->reset(*snap);
                links_.clear();
                links_.insert(snap->links.begin(), snap->links.end());
                return state_word(tracker_->present());
            }
            last_error = snap.error().message;
        } else {
            last_error = ok.error().message;
        }
        if (Clock::now() >= deadline)
            break;
        if (wait_signal(100) && handle_signal())
            break;
    }
    log_.warning(fmt::format("Timeout reading the initial status of router {}, state is set to \"backup\" ({})",
                             o_.router_id, last_error));
    return "backup";
}

void Monitor::sync_conntrack(const std::string& state) {
    auto options = conntrackd_options(state == "primary");
    for (auto option : options) {
        // Between commands, a SIGTERM ends the sync: exit comes first.
        sigset_t pending;
        if (::sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT)))
            return;
        std::vector<std::string> argv{"conntrackd", "-C", o_.conf_dir + "/conntrackd.conf", std::string(option)};
        log_.debug(fmt::format("Executing \"conntrackd -C {}/conntrackd.conf {}\" on router {}", o_.conf_dir, option,
                               o_.router_id));
        auto outcome = run_in_netns(netns_fd_ ? netns_fd_.get() : -1, argv, conntrackd_timeout);
        if (!outcome) {
            log_.error(fmt::format("conntrackd {} for router {}: {}", option, o_.router_id, outcome.error().message));
            continue;
        }
        if (outcome->exit_code != 0 || outcome->timed_out) {
            auto output = outcome->output;
            while (!output.empty() && output.back() == '\n')
                output.pop_back();
            log_.error(fmt::format("conntrackd {} for router {} {}: {}", option, o_.router_id,
                                   outcome->timed_out ? "timed out"
                                   : outcome->signal ? fmt::format("was killed by signal {}", outcome->signal)
                                                     : fmt::format("exited with {}", outcome->exit_code),
                                   quote(output)));
        }
    }
    log_.info(fmt::format("Synced connection tracking state on {} for router {}", state, o_.router_id));
}

void Monitor::transition(const std::string& state) {
    current_ = state;
    if (state != "primary")
        announcing_.clear();  // a backup router must not claim addresses
    ++sequence_;
    // The new file is in place (renamed over the old one: every reader sees
    // one whole word) before the agent is told, and made durable only
    // after: waiting for the disk first cost 1-3 ms per transition on ext4,
    // and 100 routers' fsyncs queue behind each other (BENCHMARKS.md). The
    // file outlives nothing it depends on: after a crash of the machine,
    // keepalived decides again and this monitor, restarted by the agent,
    // reads the state from the interface and rewrites the file at once;
    // neutron's own daemon never syncs it at all.
    auto written = write_neutron_state(conf_dir_.get(), state, StateDurability::later);
    if (written)
        log_.info(fmt::format("Wrote router {} state {}", o_.router_id, state));
    else
        log_.error(fmt::format("cannot write {}/state for router {}: {}", o_.conf_dir, o_.router_id,
                               written.error().describe()));
    if (o_.enable_conntrackd)
        sync_conntrack(state);
    retry_.set(state, Clock::now());
    try_notify();
    if (written)
        if (auto ok = sync_neutron_state(conf_dir_.get()); !ok)
            log_.error(fmt::format("cannot sync {} for router {}: {}", o_.conf_dir, o_.router_id,
                                   ok.error().describe()));
}

void Monitor::try_notify() {
    if (!retry_.due(Clock::now()))
        return;
    const auto& state = *retry_.pending();
    Delivery delivery;
    delivery.event.name = o_.router_id;
    delivery.event.state = state == "primary" ? State::master : State::backup;
    delivery.event.sequence = sequence_;
    delivery.event.time_usec = realtime_usec();
    delivery.event.source = Source::monitor;
    delivery.router_id = o_.router_id;
    delivery.neutron_state_names = o_.neutron_state_names;
    auto request = build_http_request(delivery);
    if (!request) {
        log_.error(fmt::format("cannot build the notification for router {}: {}", o_.router_id,
                               request.error().message));
        retry_.delivered();
        return;
    }
    auto result = sink_->attempt(*request);
    if (result.delivered) {
        log_.info(fmt::format("Notified agent router {}, state {}", o_.router_id,
                              *neutron_state(delivery.event.state, o_.neutron_state_names)));
        retry_.delivered();
        return;
    }
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    if (result.busy)
        retry_.busy(Clock::now(), jitter(rng_));
    else
        retry_.failed(Clock::now(), jitter(rng_));
    // The first failure and then every tenth: a stopped agent must not
    // fill the log.
    if (retry_.failures() == 1 || retry_.failures() % 10 == 0)
        log_.warning(fmt::format("Notifying agent of router {} state {} failed ({} so far, retrying): {}",
                                 o_.router_id, state, retry_.failures(), result.error));
}

bool Monitor::read_watch() {
    bool resync = false;
    std::vector<RtnlEvent> events;
    alignas(nlmsghdr) std::uint8_t buffer[8192];
    while (true) {
        auto n = ::recv(watch_.get(), buffer, sizeof buffer, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == ENOBUFS) {
            // Notifications were dropped: only a snapshot tells the truth.
            log_.warning(fmt::format("netlink notifications lost for router {}: reading the addresses afresh",
                                     o_.router_id));
            resync = true;
            continue;
        }
        if (n < 0) {
            log_.error(fmt::format("reading netlink notifications for router {}: {}", o_.router_id,
                                   std::strerror(errno)));
            watch_.reset();
            return false;
        }
        if (static_cast<std::size_t>(n) > sizeof buffer) {
            resync = true;  // a notification larger than our buffer: read the table instead
            continue;
        }
        auto decoded = decode_rtnl_events(std::span<const std::uint8_t>(buffer, static_cast<std::size_t>(n)), events);
        if (!decoded) {
            log_.warning(fmt::format("undecodable netlink notification for router {}: {}", o_.router_id,
                                     decoded.error().message));
            resync = true;
        }
    }
    if (!tracker_)
        return true;
    for (const auto& event : events) {
        track_links(event);
        if (tracker_->apply(event) == VipTracker::Change::resync)
            resync = true;
    }
    if (resync) {
        auto snap = snapshot();
        if (snap) {
            tracker_->reset(*snap);
            links_.clear();
            links_.insert(snap->links.begin(), snap->links.end());
        }
        else
            log_.error(fmt::format("cannot read the addresses of router {}: {}", o_.router_id, snap.error().message));
    }
    // Everything queued is applied first: a burst (add, del, add) costs one
    // transition to its outcome, and the latest state is what is sent.
    auto state = state_word(tracker_->present());
    if (state != current_) {
        log_.info(fmt::format("Detected state change of router {} to {}", o_.router_id, state));
        transition(state);
    }
    if (o_.announce_non_ha && current_ == "primary")
        for (const auto& event : events)
            announce(event);
    return true;
}

void Monitor::track_links(const RtnlEvent& event) {
    if (event.type == RtnlEvent::Type::link_changed)
        links_[event.ifindex] = event.ifname;
    else if (event.type == RtnlEvent::Type::link_removed)
        links_.erase(event.ifindex);
}

// An address added to another interface than the HA one while primary:
// announced there (keepalived versions without GARP on reload relied on
// the old Python monitor for it).
void Monitor::announce(const RtnlEvent& event) {
    if (event.type != RtnlEvent::Type::address_added || event.ifindex == tracker_->ifindex())
        return;
    auto link = links_.find(event.ifindex);
    if (link == links_.end() || link->second == "lo")
        return;
    auto address = event.address;
    address.prefix = -1;
    PacketSockets sockets;
    auto session = std::make_unique<AnnounceSession>(
        AnnounceSession::prepare(o_.netns, link->second, {address.str()}, garp_, Clock::now(), sockets));
    if (!session->error().empty()) {
        log_.warning(fmt::format("cannot announce {} on {} for router {}: {}", address.str(), link->second,
                                 o_.router_id, session->error()));
        return;
    }
    session->send_due();
    announcing_.push_back(std::move(session));
    send_announcements();
}

// Sends what is due; a finished session reports its outcome and goes.
void Monitor::send_announcements() {
    for (auto it = announcing_.begin(); it != announcing_.end();) {
        auto& session = **it;
        session.send_due();
        if (session.next_due()) {
            ++it;
            continue;
        }
        for (const auto& outcome : session.outcomes())
            log_.info(fmt::format("Announced {} on {} for router {}: {} ({} of {} packets{}{})", outcome.address,
                                  session.interface(), o_.router_id, outcome.result, outcome.sent, outcome.planned,
                                  outcome.reason.empty() ? "" : "; ", outcome.reason));
        it = announcing_.erase(it);
    }
}

int Monitor::announce_wait_ms() const {
    int wait = -1;
    auto now = AnnounceClock::now();
    for (const auto& session : announcing_) {
        if (auto due = session->next_due()) {
            auto ms = std::max<long long>(std::chrono::ceil<std::chrono::milliseconds>(*due - now).count(), 0);
            wait = wait < 0 ? static_cast<int>(ms) : std::min(wait, static_cast<int>(ms));
        }
    }
    return wait;
}

bool Monitor::wait_signal(int timeout_ms) {
    pollfd p{signal_fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) > 0;
}

// true when the monitor must stop.
bool Monitor::handle_signal() {
    signalfd_siginfo info{};
    while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGHUP) {
            // logrotate's postrotate: the next line goes to the new file.
            if (auto ok = log_.reopen(); !ok)
                log_.error(fmt::format("log file not reopened (SIGHUP), still writing the old one: {}",
                                       ok.error().describe()));
            else
                log_.info("log file reopened (SIGHUP)");
            continue;
        }
        log_.info(fmt::format("Received signal {}, exiting (router {})", info.ssi_signo, o_.router_id));
        stop_ = true;
    }
    return stop_;
}

int Monitor::run() {
    if (auto ok = setup(); !ok) {
        log_.error(fmt::format("cannot start the monitor of router {}: {}", o_.router_id, ok.error().message));
        return exit_code_for(ok.error().kind);
    }
    log_.info(fmt::format("kanotify monitor of router {} started (pid {}, interface {}, cidr {}, namespace {})",
                          o_.router_id, ::getpid(), o_.interface, quote(o_.cidr),
                          o_.netns.empty() ? std::string("(own)") : o_.netns));
    for (const auto& word : o_.ignored)
        log_.debug(fmt::format("ignored argument {}", quote(word)));
    auto state = initial_state();
    if (!stop_) {
        log_.info(fmt::format("Initial status of router {} is {}", o_.router_id, state));
        transition(state);
    }
    // What start-up allocated (the configuration file, a dump) goes back.
    (void)::malloc_trim(0);
    while (!stop_) {
        auto now = Clock::now();
        int timeout = retry_.wait_ms(now);
        if (int announce = announce_wait_ms(); announce >= 0)
            timeout = timeout < 0 ? announce : std::min(timeout, announce);
        if (!watch_ && tracker_) {
            auto until = std::chrono::ceil<std::chrono::milliseconds>(reopen_at_ - now).count();
            int reopen = static_cast<int>(std::max<long long>(until, 0));
            timeout = timeout < 0 ? reopen : std::min(timeout, reopen);
        }
        pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {watch_ ? watch_.get() : -1, POLLIN, 0}};
        int ready = ::poll(fds, 2, timeout);
        if (ready < 0 && errno != EINTR) {
            log_.error(fmt::format("poll: {}", std::strerror(errno)));
            return exit_system;
        }
        if (fds[0].revents & POLLIN && handle_signal())
            break;
        if (watch_ && (fds[1].revents & (POLLIN | POLLERR))) {
            if (!read_watch())
                reopen_at_ = Clock::now() + reopen_delay;
        }
        if (!watch_ && tracker_ && Clock::now() >= reopen_at_) {
            if (auto ok = open_watch(); ok) {
                log_.info(fmt::format("watching router {} addresses again", o_.router_id));
                auto snap = snapshot();
                if (snap) {
                    tracker_->reset(*snap);
                    auto now_state = state_word(tracker_->present());
                    if (now_state != current_)
                        transition(now_state);
                }
            } else {
                reopen_at_ = Clock::now() + reopen_delay;
            }
        }
        try_notify();
        send_announcements();
    }
    remove_pid_file(o_.pid_file, ::getpid());
    return exit_ok;
}

}  // namespace

int run_monitor(int argc, char** argv) {
    MonitorLog log;
    auto options = parse_monitor_args(std::span<char* const>(argv + 1, static_cast<std::size_t>(argc - 1)));
    auto fail = [&](const Error& error) {
        // Before the log file is known, stderr is all there is.
        auto line = fmt::format("kanotify monitor: {}\n", error.describe());
        (void)!::write(STDERR_FILENO, line.data(), line.size());
        return exit_code_for(error.kind);
    };
    if (!options)
        return fail(options.error());
    if (auto ok = validate_monitor_options(*options); !ok)
        return fail(ok.error());
    // stdin and stdout are never used; stderr only until the log is open.
    redirect_to_null(STDIN_FILENO);
    redirect_to_null(STDOUT_FILENO);
    if (!options->log_file.empty()) {
        if (auto opened = log.open_file(options->log_file); !opened)
            return fail(opened.error());
    } else {
        log.use_stderr();
    }
    // Whatever a library might print must not block on a pipe nobody reads.
    redirect_to_null(STDERR_FILENO);
    log.set_debug(options->debug);
    log.set_router(options->router_id);
    Monitor monitor(std::move(*options), log);
    return monitor.run();
}

}  // namespace kanotify::cli
