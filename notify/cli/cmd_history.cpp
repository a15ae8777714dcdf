// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify history [--json] [-n N]`: the tail of the journal, oldest first.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "journal.hpp"
#include "kanotify/exit_code.hpp"
#include "time_format.hpp"

namespace kanotify::cli {

namespace {

std::string text_or(const nlohmann::json& entry, const char* key, const char* fallback = "-") {
    auto it = entry.find(key);
    if (it == entry.end() || it->is_null())
        return fallback;
    if (it->is_string())
        return it->get<std::string>();
    return it->dump();
}

std::string describe(const nlohmann::json& entry) {
    auto time = entry.value("time_usec", std::int64_t{0});
    auto type = text_or(entry, "type");
    if (type == "transition")
        return fmt::format("{} {:<8} {:<20} {:>6} -> {:<19} prio {:>3} seq {} {} {}{}", format_usec(time),
                           text_or(entry, "kind"), text_or(entry, "name"), text_or(entry, "previous"),
                           text_or(entry, "state"), text_or(entry, "priority"), text_or(entry, "sequence"),
                           text_or(entry, "source"), text_or(entry, "outcome"),
                           entry.contains("reason") ? " (" + text_or(entry, "reason") + ")" : "");
    if (type == "rejected")
        return fmt::format("{} rejected {} input {}: {}", format_usec(time), text_or(entry, "source"),
                           text_or(entry, "input"), text_or(entry, "reason"));
    if (type == "delivery")
        return fmt::format("{} delivery {} {} {} to {}: {} after {} attempt(s){}", format_usec(time), text_or(entry, "kind"),
                           text_or(entry, "name"), text_or(entry, "state"), text_or(entry, "sink"),
                           text_or(entry, "outcome"), text_or(entry, "attempts"),
                           entry.contains("detail") ? " (" + text_or(entry, "detail") + ")" : "");
    if (type == "hook") {
        auto argv = entry.contains("argv") ? entry["argv"].dump() : "[]";
        auto status = entry.contains("exit_status") ? " exit " + text_or(entry, "exit_status")
                      : entry.contains("signal")    ? " signal " + text_or(entry, "signal")
                                                    : std::string();
        return fmt::format("{} hook {} {} {} {}: {}{}{}", format_usec(time), text_or(entry, "kind"),
                           text_or(entry, "name"), text_or(entry, "state"), argv, text_or(entry, "outcome"), status,
                           entry.contains("error") ? " (" + text_or(entry, "error") + ")" : "");
    }
    if (type == "announce") {
        std::string addresses;
        if (auto it = entry.find("addresses"); it != entry.end() && it->is_array())
            for (const auto& a : *it)
                addresses += fmt::format("; {} {} {}{}", text_or(a, "address"), text_or(a, "result"),
                                         text_or(a, "sent"),
                                         a.contains("reason") ? " (" + text_or(a, "reason") + ")" : "");
        return fmt::format("{} announce {} {} {} on {}: {}, {} packet(s) sent, {} error(s){}{}", format_usec(time),
                           text_or(entry, "kind"), text_or(entry, "name"), text_or(entry, "state"),
                           text_or(entry, "interface"), text_or(entry, "outcome"), text_or(entry, "packets_sent"),
                           text_or(entry, "packet_errors"),
                           entry.contains("error") ? " (" + text_or(entry, "error") + ")" : "", addresses);
    }
    if (type == "checker")
        return fmt::format("{} checker {}", format_usec(time), text_or(entry, "line"));
    return fmt::format("{} {}", format_usec(time), entry.dump());
}

// Prints lines appended to journal.jsonl from its current end on, across
// rotations (journal.jsonl renamed away and created anew), using inotify.
Result<void> follow_journal(const StateStore& store, const std::function<void(std::string_view)>& print) {
    UniqueFd inotify(::inotify_init1(IN_CLOEXEC));
    if (!inotify)
        return system_error("cannot create an inotify instance", errno);
    if (::inotify_add_watch(inotify.get(), store.path().c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM) < 0)
        return system_error(fmt::format("cannot watch {}", quote(store.path())), errno);
    UniqueFd file;
    ino_t inode = 0;
    std::string partial;
    auto reopen = [&](bool from_end) {
        file.reset(::openat(store.dir_fd(), Journal::file_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        struct stat st {};
        if (file && ::fstat(file.get(), &st) == 0) {
            inode = st.st_ino;
            if (from_end)
                ::lseek(file.get(), 0, SEEK_END);
        }
        partial.clear();
    };
    auto drain = [&] {
        if (!file)
            return;
        char buffer[65536];
        ssize_t n;
        while ((n = ::read(file.get(), buffer, sizeof buffer)) > 0) {
            partial.append(buffer, static_cast<std::size_t>(n));
            std::size_t start = 0;
            for (auto nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n', start)) {
                if (nl > start)
                    print(std::string_view(partial).substr(start, nl - start));
                start = nl + 1;
            }
            partial.erase(0, start);
        }
    };
    reopen(true);
    alignas(inotify_event) char events[4096];
    while (::read(inotify.get(), events, sizeof events) > 0) {
        drain();  // whatever reached the file we have open, rotated or not
        struct stat st {};
        if (::fstatat(store.dir_fd(), Journal::file_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino != inode) {
            reopen(false);
            drain();
        }
    }
    return system_error("cannot read inotify events", errno);
}

}  // namespace

int run_history(int argc, char** argv) {
    CLI::App app{"kanotify history: the most recent journal entries, oldest first", "kanotify history"};
    GlobalOptions global;
    add_global_options(app, global);
    bool json = false;
    std::size_t count = 20;
    app.add_flag("--json", json, "print the journal's JSON lines as they are");
    app.add_option("-n,--lines", count, "how many entries (0: all; default 20)");
    bool follow = false;
    app.add_flag("-f,--follow", follow, "then print new entries as they are journalled, until interrupted");
    if (auto code = parse(app, argc, argv))
        return *code;
    auto config = load(global);
    if (!config)
        return report(config.error());
    auto store = StateStore::open(config->state_dir);
    if (!store)
        return report(store.error());
    Journal journal(*store, config->journal);
    auto read = journal.tail(count);
    if (!read)
        return report(read.error());
    for (const auto& line : read->lines) {
        if (json) {
            std::cout << line << '\n';
            continue;
        }
        auto entry = nlohmann::json::parse(line, nullptr, false);
        std::cout << (entry.is_discarded() ? line : describe(entry)) << '\n';
    }
    if (read->torn > 0)
        std::cerr << fmt::format("kanotify: {} incomplete journal lines skipped\n", read->torn);
    if (!follow)
        return exit_ok;
    std::cout.flush();
    auto print = [&](std::string_view line) {
        if (json) {
            std::cout << line << '\n';
        } else {
            auto entry = nlohmann::json::parse(line, nullptr, false);
            std::cout << (entry.is_discarded() ? std::string(line) : describe(entry)) << '\n';
        }
        std::cout.flush();
    };
    auto followed = follow_journal(*store, print);
    return followed ? exit_ok : report(followed.error());
}

}  // namespace kanotify::cli
