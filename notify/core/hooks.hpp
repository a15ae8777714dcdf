// SPDX-License-Identifier: GPL-2.0-or-later
// The user's own commands, run in transition order: what people write notify
// scripts for, without keepalived's concurrency. Each hook is an argument
// vector (never a shell), runs in its own process group with the
// transition in its environment, its stdout and stderr captured for the
// journal, and is killed with its whole group at the timeout (SIGTERM, then
// SIGKILL after a grace).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/dispatch.hpp"
#include "kanotify/event.hpp"

namespace kanotify {

inline constexpr std::size_t max_hook_output = 16384;
inline constexpr std::chrono::milliseconds hook_kill_grace{2000};

enum class HookResult { exited, signalled, timed_out, not_started, superseded };

struct HookRun {
    Argv argv;
    HookResult result = HookResult::not_started;
    int exit_status = 0;  // exit code, or the signal for `signalled`
    std::int64_t duration_usec = 0;
    std::string output;   // stdout and stderr, interleaved, truncated to max_hook_output
    std::string error;    // why it could not start
};

[[nodiscard]] std::string_view to_string(HookResult result) noexcept;

// The hooks configured for this event: its state's, then "any".
[[nodiscard]] std::vector<Argv> hooks_for(const HookSettings& settings, State state);

// The environment and arguments a hook gets for this event.
[[nodiscard]] std::vector<std::string> hook_environment(const Event& event, const std::optional<State>& previous);
[[nodiscard]] Argv hook_arguments(const Argv& hook, const Event& event, bool keepalived_args);

// Runs one hook to completion (or to its timeout) and reports.
[[nodiscard]] HookRun run_hook(const Argv& argv, const std::vector<std::string>& environment,
                               std::chrono::milliseconds timeout, const std::string& user);

[[nodiscard]] std::string hook_line(const Event& event, const HookRun& run);

}  // namespace kanotify
