// SPDX-License-Identifier: GPL-2.0-or-later
// The one Event every front-end produces and the dispatch consumes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kanotify/error.hpp"

namespace kanotify {

enum class Kind { instance, group };

enum class State {
    master,
    backup,
    fault,
    stop,
    deleted,
    master_rx_lower_pri,
    master_priority,
    backup_priority,
};

enum class Source { argv, fifo, preload, monitor };

struct Event {
    Kind kind = Kind::instance;
    std::string name;
    State state = State::backup;
    std::optional<std::uint8_t> priority;  // absent for explicit-state calls without one
    std::uint64_t sequence = 0;            // 0: unknown
    std::int64_t time_usec = 0;            // CLOCK_REALTIME when received
    std::int64_t boottime_usec = 0;        // CLOCK_BOOTTIME when received (0: unknown)
    Source source = Source::argv;
};

inline constexpr std::size_t max_name_length = 64;

// keepalived's spelling: "INSTANCE"/"GROUP", "MASTER", ... .
[[nodiscard]] std::string_view to_string(Kind kind) noexcept;
[[nodiscard]] std::string_view to_string(State state) noexcept;
[[nodiscard]] std::string_view to_string(Source source) noexcept;

// Exact, upper-case keepalived spelling only (what keepalived itself writes).
[[nodiscard]] std::optional<Kind> parse_kind(std::string_view word) noexcept;
[[nodiscard]] std::optional<State> parse_state(std::string_view word) noexcept;
// The `--state` flag: also the lower-case spelling users write in keepalived.conf.
[[nodiscard]] std::optional<State> parse_state_flag(std::string_view word) noexcept;

// States that a state file records; the others are events about a state.
[[nodiscard]] bool is_recorded_state(State state) noexcept;

// 1-64 characters of [A-Za-z0-9_.:-], not containing "..": safe as a file
// name component, a D-Bus path element after encoding and a log field.
[[nodiscard]] Result<void> validate_name(std::string_view name);

// 0-255, the whole word consumed, no sign, no spaces.
[[nodiscard]] Result<std::uint8_t> parse_priority(std::string_view word);

// Quote untrusted text for a message: printable ASCII kept, everything else
// escaped, long input shortened, so a log line is always one safe line.
[[nodiscard]] std::string quote(std::string_view text);

[[nodiscard]] std::int64_t realtime_usec() noexcept;
// CLOCK_BOOTTIME: never stepped, shared by every process of one boot.
[[nodiscard]] std::int64_t boottime_usec() noexcept;
// The kernel's random id of this boot (its first 64 bits), 0 if unreadable:
// tells a CLOCK_BOOTTIME stamp of this boot from one of an earlier boot.
[[nodiscard]] std::uint64_t boot_id() noexcept;

}  // namespace kanotify
