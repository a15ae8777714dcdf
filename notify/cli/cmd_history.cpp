// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify history [--json] [-n N]`: the tail of the journal, oldest first.
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
    if (type == "checker")
        return fmt::format("{} checker {}", format_usec(time), text_or(entry, "line"));
    return fmt::format("{} {}", format_usec(time), entry.dump());
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
    return exit_ok;
}

}  // namespace kanotify::cli
