// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify wait [--state STATE] [--timeout DURATION] NAME`: blocks until the
// recorded state of NAME is STATE (or, without --state, until it changes),
// watching the state directory with inotify: no polling, and it returns as
// soon as the rename that records the state lands.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <iostream>

#include <fmt/format.h>

#include "common.hpp"
#include "duration.hpp"
#include "kanotify/exit_code.hpp"
#include "state_store.hpp"

namespace kanotify::cli {

int run_wait(int argc, char** argv) {
    CLI::App app{"kanotify wait: wait until an instance's recorded state is STATE (or changes)", "kanotify wait"};
    GlobalOptions global;
    add_global_options(app, global);
    std::string name, timeout_text, state_text;
    bool group = false;
    app.add_option("--state", state_text, "the state to wait for (master, backup, fault, stop, deleted)");
    app.add_option("--timeout", timeout_text, "give up after this long (500ms, 10s, 2m; exit 75)");
    app.add_flag("--group", group, "NAME is a sync group");
    app.add_option("name", name, "instance (or group) name")->required();
    if (auto code = parse(app, argc, argv))
        return *code;
    auto config = load(global);
    if (!config)
        return report(config.error());
    if (auto ok = validate_name(name); !ok)
        return report(ok.error());
    std::optional<State> wanted;
    if (!state_text.empty()) {
        wanted = parse_state_flag(state_text);
        if (!wanted || !is_recorded_state(*wanted))
            return report(Error{ErrorKind::usage, {}, fmt::format("--state {} is not a recorded state", quote(state_text))});
    }
    std::optional<std::chrono::milliseconds> timeout;
    if (!timeout_text.empty() && !(timeout = parse_duration(timeout_text)))
        return report(Error{ErrorKind::usage, {}, fmt::format("--timeout {} is not a duration", quote(timeout_text))});
    auto store = StateStore::open(config->state_dir);
    if (!store)
        return report(store.error());
    auto kind = group ? Kind::group : Kind::instance;

    // Watch first, then read: a change between the two is not missed.
    UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!inotify)
        return report(system_error("cannot create an inotify instance", errno).value());
    auto dir = group ? config->state_dir + "/group" : config->state_dir;
    if (::inotify_add_watch(inotify.get(), dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE) < 0)
        return report(system_error(fmt::format("cannot watch {}", quote(dir)), errno).value());

    auto initial = store->read(kind, name);
    if (!initial)
        return report(initial.error());
    auto matches = [&](const std::optional<State>& current) {
        return wanted ? current == wanted : current != *initial;
    };
    if (wanted && matches(*initial)) {
        std::cout << to_string(**initial) << '\n';
        return exit_ok;
    }
    auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
    auto file = name + ".state";
    alignas(inotify_event) char buffer[4096];
    while (true) {
        int wait_ms = -1;
        if (timeout) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                std::cerr << fmt::format("kanotify: timed out waiting for {} {}\n", name,
                                         wanted ? fmt::format("to be {}", to_string(*wanted)) : "to change");
                return exit_timeout;
            }
            wait_ms = static_cast<int>(left.count());
        }
        pollfd p{inotify.get(), POLLIN, 0};
        if (::poll(&p, 1, wait_ms) <= 0)
            continue;
        bool ours = false;
        ssize_t n;
        while ((n = ::read(inotify.get(), buffer, sizeof buffer)) > 0)
            for (char* at = buffer; at < buffer + n;) {
                auto* event = reinterpret_cast<inotify_event*>(at);
                ours = ours || (event->len > 0 && file == event->name) || (event->mask & IN_Q_OVERFLOW);
                at += sizeof(inotify_event) + event->len;
            }
        if (!ours)
            continue;
        auto current = store->read(kind, name);
        if (current && matches(*current)) {
            std::cout << (*current ? to_string(**current) : std::string_view("none")) << '\n';
            return exit_ok;
        }
    }
}

}  // namespace kanotify::cli
