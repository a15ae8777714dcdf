// SPDX-License-Identifier: GPL-2.0-or-later
#include "common.hpp"

#include <unistd.h>

#include <cstdlib>

#include <iostream>

#include <fmt/format.h>

#include "kanotify/event.hpp"
#include "kanotify/exit_code.hpp"
#include "fault_point.hpp"
#include "log.hpp"
#include "privileges.hpp"

#ifndef KANOTIFY_DEFAULT_CONFIG
#define KANOTIFY_DEFAULT_CONFIG "/etc/kanotify/kanotify.toml"
#endif
#ifndef KANOTIFY_VERSION
#define KANOTIFY_VERSION "0"
#endif

namespace kanotify::cli {

void add_global_options(CLI::App& app, GlobalOptions& options) {
    app.add_option("--config", options.config_path, "configuration file (default " KANOTIFY_DEFAULT_CONFIG ")");
    app.add_option("--state-dir", options.state_dir, "state directory (default /var/lib/kanotify)");
    app.add_option("--log-file", options.log_file, "also append log lines to this file");
    app.add_flag("--debug", options.debug, "log debug messages");
    app.add_option("--log-target", options.log_target, "auto (journald unless stderr is a terminal), journal, stderr")
        ->check(CLI::IsMember({"auto", "journal", "stderr"}));
    app.add_option("--socket", options.socket_path,
                   "deliver transitions to this Unix socket (HTTP POST, neutron's protocol); overrides [socket] path");
    app.set_version_flag("--version", "kanotify " KANOTIFY_VERSION);
}

Result<Config> load(const GlobalOptions& options) {
    // Test-only: the crash-point sweep (see fault_point.hpp).
    if (const char* step = ::secure_getenv("KANOTIFY_TEST_CRASH_AT"))
        arm_crash_point(step);
    LoadOptions load_options;
    load_options.required = !options.config_path.empty();
    load_options.path = options.config_path.empty() ? KANOTIFY_DEFAULT_CONFIG : options.config_path;
    load_options.enforce_owner = ::geteuid() == 0;
    auto config = load_config(load_options);
    if (!config)
        return config;
    if (options.state_dir)
        config->state_dir = *options.state_dir;
    if (config->state_dir.empty() || config->state_dir.front() != '/')
        return make_error(ErrorKind::usage,
                          fmt::format("--state-dir must be an absolute path, not {}", quote(config->state_dir)));
    if (options.log_file)
        config->log_file = *options.log_file;
    if (options.socket_path) {
        if (options.socket_path->empty() || options.socket_path->front() != '/')
            return make_error(ErrorKind::usage,
                              fmt::format("--socket must be an absolute path, not {}", quote(*options.socket_path)));
        config->defaults.socket.path = *options.socket_path;
        for (auto& [name, settings] : config->instances)
            settings.socket.path = *options.socket_path;
    }
    if (options.debug)
        config->log_level = "debug";
    if (options.log_target == "journal")
        logger().set_target(Logger::Target::journal);
    else if (options.log_target == "stderr")
        logger().set_target(Logger::Target::stderr_only);
    auto level = parse_level(config->log_level).value_or(Level::info);
    if (auto ok = logger().configure(level, config->log_file); !ok)
        return tl::unexpected(ok.error());
    for (const auto& setting : config->not_yet_acted_on)
        logger().log(Level::warning, fmt::format("{}: {} is read but this version of kanotify does not act on it",
                                                 config->source_path, setting));
    return config;
}

int report(const Error& error) {
    logger().log(Level::error, error.describe(), {}, message_id::failure);
    // A refused invocation is told to its caller too, even when the log
    // goes to journald.
    if (logger().to_journal() &&
        (error.kind == ErrorKind::usage || error.kind == ErrorKind::config || error.kind == ErrorKind::invalid))
        std::cerr << "kanotify: " << error.describe() << '\n';
    return exit_code_for(error.kind);
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "kanotify: " << e.what() << "\n(see kanotify --help)\n";
        return exit_usage;
    }
    return std::nullopt;
}

void drop_privileges(const Config& config) {
    auto needs = capabilities_for(config);
    auto dropped = keep_only(needs);
    if (!dropped)
        logger().log(Level::warning, fmt::format("capabilities not reduced: {}", dropped.error().describe()));
    else if (*dropped)
        logger().log(Level::debug, fmt::format("capabilities: permitted {}, effective set empty between uses "
                                               "(each use raises its capability for the one operation)",
                                               needs.describe()));
}

}  // namespace kanotify::cli
