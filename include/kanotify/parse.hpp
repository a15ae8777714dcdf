// SPDX-License-Identifier: GPL-2.0-or-later
// Parsers for what keepalived hands us: the words of a notify invocation and
// the lines of the notify FIFO. Pure functions: text in, Event or Error out.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kanotify/error.hpp"
#include "kanotify/event.hpp"

namespace kanotify {

// keepalived's generic `notify`: TYPE NAME STATE PRIORITY, as four words.
[[nodiscard]] Result<Event> parse_notify_words(std::span<const std::string> words);

// The explicit form (`notify_master "kanotify --state master --instance VI_1"`).
struct ExplicitNotify {
    std::optional<std::string> instance;
    std::optional<std::string> group;
    std::optional<std::string> state;
    std::optional<std::string> priority;
};
[[nodiscard]] Result<Event> parse_explicit_notify(const ExplicitNotify& flags);

// One line of keepalived's notify FIFO, without its newline.
enum class FifoLineKind {
    vrrp,     // INSTANCE/GROUP line: an Event
    checker,  // VS/RS lines of the global notify_fifo: recognised, not VRRP
};
struct FifoLine {
    FifoLineKind kind = FifoLineKind::vrrp;
    Event event;             // for vrrp lines
    std::string checker;     // the raw checker line, for checker lines
};
inline constexpr std::size_t max_fifo_line = 1024;
[[nodiscard]] Result<FifoLine> parse_fifo_line(std::string_view line);

}  // namespace kanotify
