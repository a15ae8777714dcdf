// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

#include <fmt/format.h>

namespace kanotify::cli {

// UTC, microseconds: journal times compare across hosts without a zone.
inline std::string format_usec(std::int64_t usec) {
    time_t seconds = static_cast<time_t>(usec / 1000000);
    tm parts{};
    gmtime_r(&seconds, &parts);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &parts);
    return fmt::format("{}.{:06}Z", buffer, usec % 1000000);
}

}  // namespace kanotify::cli
