// SPDX-License-Identifier: GPL-2.0-or-later
// Where front-ends report: journald with structured fields when it is there
// (spoken natively, see log.cpp for why not through libsystemd), else
// stderr; plus an optional plain log file. The core itself never logs.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "kanotify/error.hpp"

namespace kanotify {

enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

[[nodiscard]] std::optional<Level> parse_level(std::string_view name) noexcept;

// MESSAGE_IDs (journalctl MESSAGE_ID=...), one per kind of report.
namespace message_id {
inline constexpr std::string_view transition = "6f1d3c2a8b9e4d7fa1c05e3b7d2f9a41";
inline constexpr std::string_view stale = "2b8e6d4c1a7f4e39b5d0c8a6e3f1b972";
inline constexpr std::string_view rejected = "9c4a7e1f3d6b4a28a0e5f7c9b1d3e865";
inline constexpr std::string_view failure = "d3f8b2a6c9e14f57b7a1c4e0f8d2a639";
}  // namespace message_id

using Field = std::pair<std::string_view, std::string>;

class Logger {
  public:
    // level: messages above it are dropped; log_file: "" for none.
    [[nodiscard]] Result<void> configure(Level level, const std::string& log_file);
    void log(Level level, std::string_view message, std::initializer_list<Field> fields = {},
             std::string_view id = {});
    [[nodiscard]] Level level() const noexcept { return level_; }
    [[nodiscard]] bool to_journal() const noexcept { return journal_fd_ >= 0; }

    // auto: journald when it runs and stderr is not a terminal.
    enum class Target { automatic, journal, stderr_only };
    void set_target(Target target);

    static Logger& instance();

    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;
    ~Logger();

  private:
    Logger();
    static int connect_journal();
    void to_journald(Level level, std::string_view message, std::initializer_list<Field> fields, std::string_view id);

    Level level_ = Level::info;
    int journal_fd_ = -1;
    int file_fd_ = -1;
};

inline Logger& logger() {
    return Logger::instance();
}

}  // namespace kanotify
