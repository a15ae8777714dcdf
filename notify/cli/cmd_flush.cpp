// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify flush`: deliver what consumers are still owed, oldest first.
#include <iostream>

#include <fmt/format.h>

#include "common.hpp"
#include "kanotify/dispatch.hpp"
#include "kanotify/exit_code.hpp"
#include "log.hpp"

namespace kanotify::cli {

int run_flush(int argc, char** argv) {
    CLI::App app{"kanotify flush: deliver pending deliveries (the latest state each consumer has not acknowledged)",
                 "kanotify flush"};
    GlobalOptions global;
    add_global_options(app, global);
    if (auto code = parse(app, argc, argv))
        return *code;
    auto config = load(global);
    if (!config)
        return report(config.error());
    drop_privileges(*config);
    auto dispatcher = Dispatcher::open(*config);
    if (!dispatcher)
        return report(dispatcher.error());
    if (auto removed = dispatcher->clean_up(); removed && *removed > 0)
        logger().log(Level::notice, fmt::format("removed {} temporary files left by an interrupted write", *removed));
    auto flushed = dispatcher->flush();
    if (!flushed)
        return report(flushed.error());
    if (auto metrics = dispatcher->write_metrics(); !metrics)
        logger().log(Level::warning, fmt::format("metrics: {}", metrics.error().describe()));
    auto message = fmt::format("flush: {} delivered, {} still pending", flushed->delivered, flushed->remaining);
    logger().log(flushed->remaining ? Level::warning : Level::info, message);
    std::cout << message << '\n';
    return flushed->remaining ? exit_unavailable : exit_ok;
}

}  // namespace kanotify::cli
