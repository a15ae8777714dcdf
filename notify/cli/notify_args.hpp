// SPDX-License-Identifier: GPL-2.0-or-later
// The notify front-end's arguments: their CLI11 definition, and a quick
// reading of the one shape keepalived's generic `notify` gives them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common.hpp"
#include "kanotify/parse.hpp"

namespace kanotify::cli {

struct NotifyArgs {
    GlobalOptions global;
    ExplicitNotify flags;
    std::vector<std::string> words;  // TYPE NAME STATE PRIORITY
    std::uint64_t sequence = 0;
    std::optional<std::string> netns;
    std::optional<std::string> interface;
    std::optional<std::string> router_id;
    std::vector<std::string> addresses;
};

// Defines the notify front-end's options on `app`, bound to `args`.
void add_notify_options(CLI::App& app, NotifyArgs& args);

// keepalived's generic notify runs the configured command with TYPE NAME
// STATE PRIORITY appended; in a preloaded keepalived's child, building
// CLI11's sixteen options and parsing with them was a twentieth of each
// transition's CPU. This reads exactly that shape and nothing else: global
// options, each at most once, as separate words (--config P, --state-dir P,
// --log-file P, --socket P, --log-target auto|journal|stderr, --debug),
// then four words, no value or word starting with '-' and no word in
// brackets (CLI11's list syntax). Anything else (another option,
// `--opt=value`, --help, a fifth word) is nullopt, and
// CLI11 reads it, with its messages. Where this answers, CLI11 gives the
// same answer (tests/unit/test_notify_args.cpp compares the two).
[[nodiscard]] std::optional<NotifyArgs> read_generic_notify(int argc, char** argv);

}  // namespace kanotify::cli
