// SPDX-License-Identifier: GPL-2.0-or-later
#include "neutron_monitor.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "effective_capability.hpp"
#include "kanotify/event.hpp"
#include "netns.hpp"

namespace kanotify {

namespace {

// "log-file" and "log_file" are one flag, as oslo.config treats them.
std::string normalise_flag(std::string_view name) {
    std::string out(name);
    std::replace(out.begin(), out.end(), '-', '_');
    return out;
}

Result<std::chrono::milliseconds> parse_milliseconds(const std::string& flag, std::string_view text) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value == 0 || value > 60000)
        return make_error(ErrorKind::usage,
                          fmt::format("--{} wants milliseconds from 1 to 60000, not {}", flag, quote(text)));
    return std::chrono::milliseconds(value);
}

// oslo.config's boolean spellings, for `--flag=value` on a boolean flag.
std::optional<bool> parse_bool(std::string_view text) {
    for (auto yes : {"true", "True", "1", "yes", "on"})
        if (text == yes)
            return true;
    for (auto no : {"false", "False", "0", "no", "off"})
        if (text == no)
            return false;
    return std::nullopt;
}

Result<unsigned long> parse_id(std::string_view text) {
    unsigned long value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value >= 0xffffffffUL)
        return make_error(ErrorKind::usage, fmt::format("{} is not a numeric id", quote(text)));
    return value;
}

Result<void> require(const std::string& value, std::string_view flag) {
    if (value.empty())
        return make_error(ErrorKind::usage, fmt::format("--{} is required", flag));
    return {};
}

Result<void> require_path(const std::string& value, std::string_view flag) {
    if (auto ok = require(value, flag); !ok)
        return ok;
    // Control characters (NUL, CR, LF, ...) would break the log lines the
    // path appears in; neutron's paths never hold one.
    bool control = std::any_of(value.begin(), value.end(),
                               [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    if (value.size() > 4000 || control)
        return make_error(ErrorKind::usage, fmt::format("--{} {} is not a usable path", flag, quote(value)));
    return {};
}

}  // namespace

Result<MonitorOptions> parse_monitor_args(std::span<char* const> args) {
    MonitorOptions options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view word = args[i];
        if (!word.starts_with("--") && !(word == "-d")) {
            // A stray word (upstream ignores it as well); remembered for --debug.
            options.ignored.emplace_back(word);
            continue;
        }
        if (word == "-d")
            word = "--debug";
        word.remove_prefix(2);
        std::optional<std::string_view> inline_value;
        if (auto eq = word.find('='); eq != std::string_view::npos) {
            inline_value = word.substr(eq + 1);
            word = word.substr(0, eq);
        }
        auto name = normalise_flag(word);
        // Next word as the value unless it was given inline.
        auto value = [&]() -> Result<std::string> {
            if (inline_value)
                return std::string(*inline_value);
            if (i + 1 >= args.size())
                return make_error(ErrorKind::usage, fmt::format("--{} needs a value", name));
            return std::string(args[++i]);
        };
        auto boolean = [&](bool& out) -> Result<void> {
            if (!inline_value) {
                out = true;
                return {};
            }
            auto parsed = parse_bool(*inline_value);
            if (!parsed)
                return make_error(ErrorKind::usage,
                                  fmt::format("--{} takes no value or true/false, not {}", name, quote(*inline_value)));
            out = *parsed;
            return {};
        };
        struct Text {
            std::string_view flag;
            std::string MonitorOptions::*field;
        };
        static constexpr Text texts[] = {
            {"router_id", &MonitorOptions::router_id},
            {"namespace", &MonitorOptions::netns},
            {"conf_dir", &MonitorOptions::conf_dir},
            {"log_file", &MonitorOptions::log_file},
            {"monitor_interface", &MonitorOptions::interface},
            {"monitor_cidr", &MonitorOptions::cidr},
            {"pid_file", &MonitorOptions::pid_file},
            {"state_path", &MonitorOptions::state_path},
            {"user", &MonitorOptions::user},
            {"group", &MonitorOptions::group},
            {"neutron_state_names", &MonitorOptions::neutron_state_names},
        };
        bool known = false;
        for (const auto& t : texts) {
            if (t.flag != name)
                continue;
            auto v = value();
            if (!v)
                return tl::unexpected(v.error());
            options.*t.field = std::move(*v);
            known = true;
        }
        if (known)
            continue;
        Result<void> ok;
        if (name == "enable_conntrackd") {
            ok = boolean(options.enable_conntrackd);
        } else if (name == "noenable_conntrackd") {
            options.enable_conntrackd = false;
        } else if (name == "debug") {
            ok = boolean(options.debug);
        } else if (name == "nodebug") {
            options.debug = false;
        } else if (name == "announce_non_ha_addresses") {
            ok = boolean(options.announce_non_ha);
        } else if (name == "initial_timeout_ms") {
            auto v = value();
            if (!v)
                return tl::unexpected(v.error());
            auto ms = parse_milliseconds(name, *v);
            if (!ms)
                return tl::unexpected(ms.error());
            options.initial_timeout = *ms;
        } else {
            // Unknown (oslo's --config-file, --AGENT-root_helper, ...):
            // ignored; its value with it when it comes as the next word.
            options.ignored.emplace_back(args[i]);
            if (!inline_value && i + 1 < args.size() && !std::string_view(args[i + 1]).starts_with("-"))
                options.ignored.emplace_back(args[++i]);
        }
        if (!ok)
            return tl::unexpected(ok.error());
    }
    return options;
}

Result<void> validate_monitor_options(const MonitorOptions& o) {
    if (auto ok = require(o.router_id, "router_id"); !ok)
        return ok;
    // It becomes an HTTP header value, a log word and nothing else; neutron's
    // are UUIDs.
    if (auto ok = validate_name(o.router_id); !ok)
        return make_error(ErrorKind::usage, fmt::format("--router_id: {}", ok.error().message));
    if (!o.netns.empty())
        if (auto ok = validate_netns(o.netns); !ok)
            return make_error(ErrorKind::usage, fmt::format("--namespace: {}", ok.error().message));
    if (auto ok = require(o.interface, "monitor_interface"); !ok)
        return ok;
    if (auto ok = validate_interface(o.interface); !ok)
        return make_error(ErrorKind::usage, fmt::format("--monitor_interface: {}", ok.error().message));
    if (auto ok = require(o.cidr, "monitor_cidr"); !ok)
        return ok;
    for (auto [value, flag] : {std::pair{&o.conf_dir, "conf_dir"}, std::pair{&o.pid_file, "pid_file"},
                               std::pair{&o.state_path, "state_path"}})
        if (auto ok = require_path(*value, flag); !ok)
            return ok;
    if (!o.log_file.empty())
        if (auto ok = require_path(o.log_file, "log_file"); !ok)
            return ok;
    if (!o.neutron_state_names.empty() && o.neutron_state_names != "current" && o.neutron_state_names != "legacy")
        return make_error(ErrorKind::usage, fmt::format("--neutron_state_names is current or legacy, not {}",
                                                        quote(o.neutron_state_names)));
    // The agent's socket path must fit a sockaddr_un.
    if (o.state_path.size() + sizeof "/keepalived-state-change" > 108)
        return make_error(ErrorKind::usage, fmt::format("--state_path {} is too long for a socket path",
                                                        quote(o.state_path)));
    return {};
}

Result<IpAddress> parse_monitor_cidr(std::string_view text) {
    auto parsed = parse_ip_address(text);
    if (!parsed)
        return parsed;
    if (parsed->prefix < 0)
        parsed->prefix = parsed->family == AF_INET ? 32 : 128;
    return parsed;
}

void VipTracker::reset(const RtnlSnapshot& snapshot) {
    ifindex_ = 0;
    for (const auto& [index, name] : snapshot.links)
        if (name == interface_)
            ifindex_ = index;
    present_ = false;
    if (ifindex_ == 0)
        return;
    for (const auto& entry : snapshot.addresses)
        if (entry.ifindex == ifindex_ && is_vip(entry.address))
            present_ = true;
}

VipTracker::Change VipTracker::apply(const RtnlEvent& event) {
    using Type = RtnlEvent::Type;
    auto lose = [this] {
        ifindex_ = 0;
        if (!present_)
            return Change::none;
        present_ = false;
        return Change::changed;
    };
    switch (event.type) {
    case Type::link_changed:
        if (event.ifname == interface_ && event.ifindex != ifindex_)
            return Change::resync;  // (re)created or renamed to our name
        if (event.ifindex == ifindex_ && ifindex_ != 0 && event.ifname != interface_)
            return lose();  // renamed away: no longer the HA interface
        return Change::none;
    case Type::link_removed:
        return event.ifindex == ifindex_ && ifindex_ != 0 ? lose() : Change::none;
    case Type::address_added:
    case Type::address_removed: {
        if (ifindex_ == 0 || event.ifindex != ifindex_ || !is_vip(event.address))
            return Change::none;
        bool now = event.type == Type::address_added;
        if (now == present_)
            return Change::none;
        present_ = now;
        return Change::changed;
    }
    }
    return Change::none;
}

void RetrySchedule::set(std::string state, Clock::time_point now) {
    state_ = std::move(state);
    next_ = now;
    delay_ = first_delay;
    failures_ = 0;
}

void RetrySchedule::failed(Clock::time_point now, double jitter) {
    ++failures_;
    auto extra = std::chrono::milliseconds(static_cast<long>(static_cast<double>(delay_.count()) * jitter));
    next_ = now + delay_ + extra;
    delay_ = std::min(delay_ * 2, max_delay);
}

void RetrySchedule::busy(Clock::time_point now, double jitter) {
    ++failures_;
    auto extra = std::chrono::milliseconds(static_cast<long>(static_cast<double>(busy_delay.count()) * jitter));
    next_ = now + busy_delay + extra;
}

int RetrySchedule::wait_ms(Clock::time_point now) const noexcept {
    if (!state_)
        return -1;
    if (now >= next_)
        return 0;
    // Rounded up: waking a millisecond early would spin once for nothing.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(next_ - now).count();
    return static_cast<int>(std::min<long long>(left, 60000));
}

namespace {

Result<void> sync_directory(int dir_fd) {
    if (::fsync(dir_fd) != 0)
        return system_error("cannot sync the configuration directory", errno);
    return {};
}

}  // namespace

Result<void> sync_neutron_state(int conf_dir_fd) {
    UniqueFd fd(::openat(conf_dir_fd, "state", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
        return system_error("cannot open the state file to sync it", errno);
    if (::fsync(fd.get()) != 0)
        return system_error("cannot sync the state file", errno);
    return sync_directory(conf_dir_fd);
}

Result<void> write_neutron_state(int conf_dir_fd, std::string_view state, StateDurability durability) {
    const bool synced = durability == StateDurability::synced;
    // A random suffix and O_EXCL: nobody can plant the temporary name.
    std::random_device random;
    auto temp = fmt::format(".state.{:08x}{:08x}", random(), random());
    UniqueFd fd(::openat(conf_dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd)
        return system_error("cannot create the state file's temporary", errno);
    auto fail = [&](std::string context, int err) {
        (void)::unlinkat(conf_dir_fd, temp.c_str(), 0);
        return system_error(std::move(context), err);
    };
    if (::write(fd.get(), state.data(), state.size()) != static_cast<ssize_t>(state.size()))
        return fail("cannot write the state file", errno == 0 ? EIO : errno);
    if (synced && ::fsync(fd.get()) != 0)
        return fail("cannot sync the state file", errno);
    if (::renameat(conf_dir_fd, temp.c_str(), conf_dir_fd, "state") != 0)
        return fail("cannot rename the state file into place", errno);
    return synced ? sync_directory(conf_dir_fd) : Result<void>{};
}

Result<void> write_pid_file(const std::string& path, pid_t pid) {
    // Written to a temporary beside it and renamed into place, never
    // opened at its name: the monitor starts as root, and whoever can write
    // the pid directory (the agent's user) could plant a hard link there to
    // a file root owns, which O_TRUNC would empty, or a FIFO, which would
    // block the open for ever. rename() replaces either (and a symlink).
    auto slash = path.rfind('/');
    auto dir = slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
    auto base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty() || base == "." || base == "..")
        return make_error(ErrorKind::usage, fmt::format("pid file {} does not name a file", quote(path)));
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd)
        return system_error(fmt::format("cannot open the directory of pid file {}", quote(path)), errno);
    std::random_device random;
    std::string temp;
    UniqueFd fd;
    for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
        temp = fmt::format(".kanotify-pid.{:08x}{:08x}", random(), random());
        fd.reset(::openat(dir_fd.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!fd && errno != EEXIST)
            break;
    }
    if (!fd)
        return system_error(fmt::format("cannot create a temporary for pid file {}", quote(path)), errno);
    auto fail = [&](std::string context, int err) {
        (void)::unlinkat(dir_fd.get(), temp.c_str(), 0);
        return system_error(std::move(context), err);
    };
    // The agent (another user) reads it whatever umask we were started with.
    if (::fchmod(fd.get(), 0644) != 0)
        return fail(fmt::format("cannot set the mode of pid file {}", quote(path)), errno);
    auto text = fmt::format("{}", pid);
    errno = 0;
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail(fmt::format("cannot write pid file {}", quote(path)), errno == 0 ? EIO : errno);
    if (::renameat(dir_fd.get(), temp.c_str(), dir_fd.get(), base.c_str()) != 0)
        return fail(fmt::format("cannot rename pid file {} into place", quote(path)), errno);
    return {};
}

Result<UniqueFd> open_log_file(const std::string& path) {
    // O_NONBLOCK so that opening a FIFO planted there cannot block; it is
    // refused below anyway. It changes nothing for a regular file.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                       0644));
    if (!fd) {
        int err = errno;
        return system_error(fmt::format("cannot open log file {}{}", quote(path),
                                        err == ELOOP ? " (a symlink is refused)" : ""),
                            err);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return system_error(fmt::format("cannot stat log file {}", quote(path)), errno);
    if (!S_ISREG(st.st_mode))
        return make_error(ErrorKind::system, fmt::format("refusing log file {}: not a regular file", quote(path)));
    if (st.st_nlink != 1)
        return make_error(ErrorKind::system,
                          fmt::format("refusing log file {}: it has {} links (a planted hard link?)", quote(path),
                                      st.st_nlink));
    return fd;
}

void remove_pid_file(const std::string& path, pid_t pid) noexcept {
    // O_NONBLOCK: a FIFO planted at the path must not hang our exit.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd)
        return;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return;
    char buffer[32];
    auto n = ::read(fd.get(), buffer, sizeof buffer);
    if (n <= 0)
        return;
    std::string_view text(buffer, static_cast<std::size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.remove_suffix(1);
    if (text == fmt::format("{}", pid))
        (void)::unlink(path.c_str());
}

namespace {

[[noreturn]] void exec_in_netns(int netns_fd, char* const* argv, int output) {
    // Only async-signal-safe calls between fork() and execve() (the raise
    // is capget/capset; a no-op unless keep_only() emptied the effective set).
    EffectiveCapability raise({CAP_SYS_ADMIN});
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) {
        static constexpr char message[] = "kanotify: cannot enter the router's network namespace\n";
        (void)!::write(output, message, sizeof message - 1);
        ::_exit(126);
    }
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(output, STDOUT_FILENO) < 0 ||
        ::dup2(output, STDERR_FILENO) < 0)
        ::_exit(126);
    // Nothing else crosses the exec: our descriptors are close-on-exec,
    // and this catches any that a library opened without the flag.
    (void)::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(argv[0], argv);
    ::_exit(errno == ENOENT ? 127 : 126);
}

}  // namespace

Result<CommandOutcome> run_in_netns(int netns_fd, const std::vector<std::string>& argv,
                                    std::chrono::milliseconds timeout) {
    if (argv.empty())
        return make_error(ErrorKind::invalid, "empty command");
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return system_error("cannot create a pipe", errno);
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    pid_t child = ::fork();
    if (child < 0)
        return system_error("cannot fork", errno);
    if (child == 0)
        exec_in_netns(netns_fd, args.data(), write_end.get());
    write_end.reset();

    CommandOutcome outcome;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool open = true;
    while (open) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            outcome.timed_out = true;
            (void)::kill(child, SIGKILL);
            break;
        }
        pollfd p{read_end.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            continue;
        char buffer[1024];
        auto n = ::read(read_end.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            open = false;
        } else if (outcome.output.size() < 4096) {
            outcome.output.append(buffer, std::min<std::size_t>(static_cast<std::size_t>(n),
                                                                4096 - outcome.output.size()));
        }
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0) {
        if (errno != EINTR)
            return system_error("cannot wait for the child", errno);
    }
    if (WIFEXITED(status))
        outcome.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        outcome.signal = WTERMSIG(status);
    return outcome;
}

std::span<const std::string_view> conntrackd_options(bool primary) noexcept {
    // -c commit the external cache to the kernel, -f flush both caches,
    // -R resync the internal cache with the kernel, -B bulk-send to backups;
    // -t shorten kernel timers (zombie entries), -n ask the primary to resync.
    static constexpr std::array<std::string_view, 4> on_primary{"-c", "-f", "-R", "-B"};
    static constexpr std::array<std::string_view, 2> on_backup{"-t", "-n"};
    if (primary)
        return on_primary;
    return on_backup;
}

Result<Credentials> resolve_credentials(const std::string& user, const std::string& group) {
    Credentials c;
    c.uid = ::getuid();
    c.gid = ::getgid();
    bool user_given = !user.empty();
    if (user_given) {
        if (auto id = parse_id(user)) {
            c.uid = static_cast<uid_t>(*id);
            // A numeric uid keeps our gid unless one is given; no lookups.
        } else {
            passwd pw{}, *found = nullptr;
            std::vector<char> buffer(16384);
            if (::getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found) != 0 || !found)
                return make_error(ErrorKind::usage, fmt::format("--user: no such user {}", quote(user)));
            c.uid = pw.pw_uid;
            c.gid = pw.pw_gid;
        }
    }
    if (!group.empty()) {
        if (auto id = parse_id(group)) {
            c.gid = static_cast<gid_t>(*id);
        } else {
            ::group gr{}, *found = nullptr;
            std::vector<char> buffer(16384);
            if (::getgrnam_r(group.c_str(), &gr, buffer.data(), buffer.size(), &found) != 0 || !found)
                return make_error(ErrorKind::usage, fmt::format("--group: no such group {}", quote(group)));
            c.gid = gr.gr_gid;
        }
    }
    c.groups = {c.gid};
    return c;
}

Result<void> drop_privileges(const Credentials& c) {
    if (::setgroups(c.groups.size(), c.groups.data()) != 0)
        return system_error("cannot set the supplementary groups", errno);
    if (::setresgid(c.gid, c.gid, c.gid) != 0)
        return system_error(fmt::format("cannot switch to gid {}", c.gid), errno);
    if (::setresuid(c.uid, c.uid, c.uid) != 0)
        return system_error(fmt::format("cannot switch to uid {}", c.uid), errno);
    if (c.uid != 0 && ::setuid(0) == 0)
        return make_error(ErrorKind::system, "root could be regained after dropping privileges");
    return {};
}

}  // namespace kanotify
