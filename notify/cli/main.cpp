// SPDX-License-Identifier: GPL-2.0-or-later
// kanotify: keepalived runs it as a notify script (the default mode), as its
// vrrp_notify_fifo_script (`kanotify fifo FIFO`); people run the rest.
#include <exception>
#include <iostream>
#include <string_view>

#include "common.hpp"
#include "kanotify/exit_code.hpp"

namespace {

struct Subcommand {
    std::string_view name;
    int (*run)(int, char**);
};

constexpr Subcommand subcommands[] = {
    {"fifo", kanotify::cli::run_fifo},
    {"status", kanotify::cli::run_status},
    {"history", kanotify::cli::run_history},
    {"flush", kanotify::cli::run_flush},
    {"wait", kanotify::cli::run_wait},
    {"monitor", kanotify::cli::run_monitor},
};

// The neutron L3 agent starts its per-router monitor by this name: a
// symlink so named makes kanotify that monitor, with the agent's flags.
bool invoked_as_neutron_monitor(const char* argv0) {
    std::string_view name = argv0 ? argv0 : "";
    if (auto slash = name.rfind('/'); slash != std::string_view::npos)
        name.remove_prefix(slash + 1);
    return name == "neutron-keepalived-state-change";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc > 0 && invoked_as_neutron_monitor(argv[0]))
            return kanotify::cli::run_monitor(argc, argv);
        // A subcommand is only ever the first word: keepalived's generic
        // notify starts with INSTANCE or GROUP, the explicit form with a flag.
        if (argc > 1) {
            for (const auto& sub : subcommands)
                if (sub.name == argv[1])
                    return sub.run(argc - 1, argv + 1);
        }
        return kanotify::cli::run_notify(argc, argv);
    } catch (const std::bad_alloc&) {
        std::cerr << "kanotify: out of memory\n";
        return kanotify::exit_system;
    } catch (const std::exception& e) {
        std::cerr << "kanotify: internal error: " << e.what() << '\n';
        return kanotify::exit_system;
    }
}
