// SPDX-License-Identifier: GPL-2.0-or-later
#include "hooks.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "effective_capability.hpp"
#include "json_line.hpp"

#include "unique_fd.hpp"

extern char** environ;

namespace kanotify {

namespace {

using Clock = std::chrono::steady_clock;

std::string state_key(State state) {
    std::string key(to_string(state));
    for (auto& c : key)
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return key;
}

std::int64_t usec_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

// In the child, between fork and exec: only async-signal-safe calls.
// The account to switch to, resolved before fork(): getpwnam() and
// initgroups() may take locks that another thread holds at fork time.
struct Account {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;
};

[[noreturn]] void exec_child(char* const* argv, char* const* envp, int output, const Account* user) {
    ::setpgid(0, 0);  // its own group: a timeout kills everything it started
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(output, STDOUT_FILENO) < 0 ||
        ::dup2(output, STDERR_FILENO) < 0)
        ::_exit(126);
    // Nothing of ours (or, in the preload hook, of keepalived's) leaks into it.
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (user) {
        // Raised in the child alone (it inherited the forking thread's
        // empty effective set); setuid() to another user clears every set,
        // so nothing is lowered again. Capget/capset only: safe after fork.
        EffectiveCapability raise({CAP_SETUID, CAP_SETGID});
        if (::setgroups(user->groups.size(), user->groups.data()) != 0 || ::setgid(user->gid) != 0 ||
            ::setuid(user->uid) != 0)
            ::_exit(126);
    }
    ::execve(argv[0], argv, envp);
    ::_exit(127);
}

}  // namespace

std::string_view to_string(HookResult result) noexcept {
    switch (result) {
    case HookResult::exited:
        return "exited";
    case HookResult::signalled:
        return "signalled";
    case HookResult::timed_out:
        return "timed-out";
    case HookResult::not_started:
        return "not-started";
    case HookResult::superseded:
        return "superseded";
    }
    return "not-started";
}

std::vector<Argv> hooks_for(const HookSettings& settings, State state) {
    std::vector<Argv> out;
    if (auto it = settings.by_state.find(state_key(state)); it != settings.by_state.end())
        out = it->second;
    if (auto it = settings.by_state.find("any"); it != settings.by_state.end())
        out.insert(out.end(), it->second.begin(), it->second.end());
    return out;
}

std::vector<std::string> hook_environment(const Event& event, const std::optional<State>& previous) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e)
        if (std::strncmp(*e, "KANOTIFY_", 9) != 0)
            env.emplace_back(*e);
    env.push_back(fmt::format("KANOTIFY_INSTANCE={}", event.name));
    env.push_back(fmt::format("KANOTIFY_KIND={}", to_string(event.kind)));
    env.push_back(fmt::format("KANOTIFY_STATE={}", to_string(event.state)));
    env.push_back(fmt::format("KANOTIFY_PREVIOUS={}", previous ? to_string(*previous) : std::string_view()));
    env.push_back(fmt::format("KANOTIFY_PRIORITY={}", event.priority ? std::to_string(*event.priority) : ""));
    env.push_back(fmt::format("KANOTIFY_SEQUENCE={}", event.sequence));
    env.push_back(fmt::format("KANOTIFY_SOURCE={}", to_string(event.source)));
    return env;
}

Argv hook_arguments(const Argv& hook, const Event& event, bool keepalived_args) {
    Argv out = hook;
    if (keepalived_args) {
        // What keepalived's generic notify passes, so an existing script runs unchanged.
        out.emplace_back(to_string(event.kind));
        out.push_back(event.name);
        out.emplace_back(to_string(event.state));
        out.push_back(std::to_string(event.priority.value_or(0)));
    }
    return out;
}

HookRun run_hook(const Argv& argv, const std::vector<std::string>& environment, std::chrono::milliseconds timeout,
                 const std::string& user) {
    HookRun run;
    run.argv = argv;
    auto start = Clock::now();
    // Everything the child needs is prepared before fork().
    std::vector<char*> args, envp;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : environment)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    std::optional<Account> account;
    if (!user.empty()) {
        passwd pw{};
        std::vector<char> pw_buffer(16384);
        passwd* found = nullptr;
        if (::getpwnam_r(user.c_str(), &pw, pw_buffer.data(), pw_buffer.size(), &found) != 0 || !found) {
            run.error = fmt::format("no such user {}", quote(user));
            return run;
        }
        if (::geteuid() == 0) {  // only root can switch; others run hooks as themselves
            int count = 64;
            std::vector<gid_t> groups(static_cast<std::size_t>(count));
            while (::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0)
                groups.resize(static_cast<std::size_t>(count));
            groups.resize(static_cast<std::size_t>(count));
            account = Account{found->pw_uid, found->pw_gid, std::move(groups)};
        }
    }
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        run.error = fmt::format("cannot create a pipe: {}", std::strerror(errno));
        return run;
    }
    UniqueFd reader(pipe_fds[0]), writer(pipe_fds[1]);
    pid_t child = ::fork();
    if (child < 0) {
        run.error = fmt::format("cannot fork: {}", std::strerror(errno));
        return run;
    }
    if (child == 0)
        exec_child(args.data(), envp.data(), writer.get(), account ? &*account : nullptr);
    ::setpgid(child, child);  // also from here: no race with the kill below
    writer.reset();
    (void)::fcntl(reader.get(), F_SETFL, O_NONBLOCK);

    auto deadline = start + timeout;
    bool term_sent = false, kill_sent = false, exited = false, eof = false;
    int status = 0;
    Clock::time_point drain_until{};
    char buffer[4096];
    while (true) {
        if (!exited) {
            pid_t r = ::waitpid(child, &status, WNOHANG);
            if (r == child) {
                exited = true;
                // Read what is left, briefly: a background process it left
                // behind may hold the pipe open for good.
                drain_until = Clock::now() + std::chrono::milliseconds(100);
            }
        }
        if (exited && (eof || Clock::now() >= drain_until))
            break;
        auto now = Clock::now();
        if (!exited && now >= deadline && !term_sent) {
            // A hook run as another user is signalled with CAP_KILL.
            EffectiveCapability raise({CAP_KILL});
            ::kill(-child, SIGTERM);
            term_sent = true;
            run.result = HookResult::timed_out;
        }
        if (!exited && term_sent && !kill_sent && now >= deadline + hook_kill_grace) {
            EffectiveCapability raise({CAP_KILL});
            ::kill(-child, SIGKILL);
            kill_sent = true;
        }
        auto wake = exited ? drain_until : (term_sent ? deadline + hook_kill_grace : deadline);
        auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
        // Poll at most 20 ms at a time: child exit is noticed through waitpid.
        pollfd p{reader.get(), POLLIN, 0};
        int ready = eof ? 0 : ::poll(&p, 1, static_cast<int>(std::clamp<long long>(wait_ms, 0, 20)));
        if (eof && !exited)
            ::usleep(2000);
        if (ready > 0) {
            auto n = ::read(reader.get(), buffer, sizeof buffer);
            if (n > 0) {
                auto room = max_hook_output - std::min(max_hook_output, run.output.size());
                run.output.append(buffer, std::min(room, static_cast<std::size_t>(n)));
            } else if (n == 0) {
                eof = true;
            }
        }
    }
    if (term_sent) {
        EffectiveCapability raise({CAP_KILL});
        ::kill(-child, SIGKILL);  // whatever of its group is still there
    }
    run.duration_usec = usec_since(start);
    if (run.result == HookResult::timed_out) {
        run.exit_status = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        run.result = HookResult::signalled;
        run.exit_status = WTERMSIG(status);
    } else {
        run.result = HookResult::exited;
        run.exit_status = WEXITSTATUS(status);
        if (run.exit_status == 127)
            run.error = fmt::format("cannot execute {}", quote(argv.front()));
    }
    return run;
}

std::string hook_line(const Event& event, const HookRun& run) {
    nlohmann::ordered_json entry;
    entry["type"] = "hook";
    entry["time_usec"] = realtime_usec();
    entry["pid"] = ::getpid();
    entry["kind"] = to_string(event.kind);
    entry["name"] = event.name;
    entry["state"] = to_string(event.state);
    entry["sequence"] = event.sequence;
    entry["event_time_usec"] = event.time_usec;
    entry["argv"] = run.argv;
    entry["outcome"] = to_string(run.result);
    if (run.result == HookResult::exited || run.result == HookResult::signalled ||
        run.result == HookResult::timed_out) {
        entry[run.result == HookResult::exited ? "exit_status" : "signal"] = run.exit_status;
        entry["duration_usec"] = run.duration_usec;
    }
    if (!run.output.empty())
        entry["output"] = run.output;
    if (!run.error.empty())
        entry["error"] = run.error;
    return json_line(entry);
}

}  // namespace kanotify
