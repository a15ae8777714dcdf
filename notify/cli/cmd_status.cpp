// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify status [--json]`: every instance's recorded state and when it changed.
#include <ctime>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "kanotify/dispatch.hpp"
#include "kanotify/exit_code.hpp"
#include "state_store.hpp"
#include "time_format.hpp"

namespace kanotify::cli {

int run_status(int argc, char** argv) {
    CLI::App app{"kanotify status: the recorded state of every instance and group", "kanotify status"};
    GlobalOptions global;
    add_global_options(app, global);
    bool json = false;
    app.add_flag("--json", json, "print a JSON array");
    if (auto code = parse(app, argc, argv))
        return *code;
    auto config = load(global);
    if (!config)
        return report(config.error());
    auto store = StateStore::open(config->state_dir);
    if (!store)
        return report(store.error());
    auto states = store->list();
    if (!states)
        return report(states.error());
    auto dispatcher = Dispatcher::open(*config);
    if (!dispatcher)
        return report(dispatcher.error());
    auto pending = dispatcher->pending();
    auto pending_of = [&](const StoredState& s) {
        auto it = pending.find(fmt::format("{}:{}", s.kind == Kind::group ? "group" : "instance", s.name));
        return it == pending.end() ? std::vector<std::string>{} : it->second;
    };

    if (json) {
        auto out = nlohmann::ordered_json::array();
        for (const auto& s : *states) {
            nlohmann::ordered_json item;
            item["kind"] = to_string(s.kind);
            item["name"] = s.name;
            item["state"] = s.state ? nlohmann::ordered_json(to_string(*s.state)) : nullptr;
            item["since_usec"] = s.mtime_usec;
            item["pending"] = pending_of(s);
            out.push_back(std::move(item));
        }
        std::cout << out.dump(2) << '\n';
        return exit_ok;
    }
    if (states->empty()) {
        std::cout << fmt::format("no state recorded in {}\n", config->state_dir);
        return exit_ok;
    }
    std::cout << fmt::format("{:<9} {:<24} {:<8} {:<28} {}\n", "KIND", "NAME", "STATE", "SINCE", "PENDING");
    for (const auto& s : *states) {
        auto owed = pending_of(s);
        std::cout << fmt::format("{:<9} {:<24} {:<8} {:<28} {}\n", to_string(s.kind), s.name,
                                 s.state ? to_string(*s.state) : std::string_view("?"), format_usec(s.mtime_usec),
                                 owed.empty() ? "-" : fmt::format("{}", fmt::join(owed, ",")));
    }
    return exit_ok;
}

}  // namespace kanotify::cli
