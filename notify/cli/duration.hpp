// SPDX-License-Identifier: GPL-2.0-or-later
// "500ms", "10s", "2m", "1h", or plain seconds, as systemd spells durations.
#pragma once

#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>

namespace kanotify::cli {

inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data() || value > 1000000000)
        return std::nullopt;
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "s")
        factor = 1000;
    else if (unit == "ms")
        factor = 1;
    else if (unit == "m" || unit == "min")
        factor = 60000;
    else if (unit == "h")
        factor = 3600000;
    else
        return std::nullopt;
    return std::chrono::milliseconds(value * factor);
}

}  // namespace kanotify::cli
