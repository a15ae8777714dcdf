// SPDX-License-Identifier: GPL-2.0-or-later
// What every subcommand shares: the global options, loading the
// configuration they point at, and reporting an Error as an exit code.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "kanotify/config.hpp"
#include "kanotify/error.hpp"

namespace kanotify::cli {

struct GlobalOptions {
    std::string config_path;  // empty: the default path, which may be absent
    std::optional<std::string> state_dir;
    std::optional<std::string> log_file;
    bool debug = false;
    std::string log_target = "auto";
    std::optional<std::string> socket_path;
};

void add_global_options(CLI::App& app, GlobalOptions& options);

// Reads the configuration, applies the flags (which win) and sets up logging.
[[nodiscard]] Result<Config> load(const GlobalOptions& options);

// Logs the error once and returns its exit code.
[[nodiscard]] int report(const Error& error);

// Running as root: keeps only the capabilities the configured actions need
// (logged at debug level; a failure is a warning, never fatal).
void drop_privileges(const Config& config);

// Runs CLI11's parser; on --help or a usage error prints and returns the exit code.
[[nodiscard]] std::optional<int> parse(CLI::App& app, int argc, char** argv);

int run_notify(int argc, char** argv);
int run_fifo(int argc, char** argv);
int run_status(int argc, char** argv);
int run_history(int argc, char** argv);
int run_flush(int argc, char** argv);
int run_wait(int argc, char** argv);
int run_monitor(int argc, char** argv);

}  // namespace kanotify::cli
