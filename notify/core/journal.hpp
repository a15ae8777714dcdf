// SPDX-License-Identifier: GPL-2.0-or-later
// journal.jsonl: one JSON object per line, appended under a lock so that
// concurrent writers (keepalived forks one notify process per transition)
// never interleave, rotated at a size cap without losing a line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/error.hpp"
#include "state_store.hpp"

namespace kanotify {

struct JournalRead {
    std::vector<std::string> lines;  // oldest first
    std::size_t torn = 0;            // lines that were not complete JSON objects
};

class Journal {
  public:
    Journal(const StateStore& store, JournalSettings settings) : store_(store), settings_(settings) {}

    // Appends complete lines (each without its newline) in one write(),
    // makes them durable, then rotates if the cap is reached. A torn last
    // line left by a crash is terminated first, so no record is glued to it.
    [[nodiscard]] Result<void> append(const std::vector<std::string>& lines) const;

    // The last `count` lines across the rotated files (0: all of them).
    [[nodiscard]] Result<JournalRead> tail(std::size_t count) const;

    static constexpr const char* file_name = "journal.jsonl";

  private:
    [[nodiscard]] Result<void> rotate() const;

    const StateStore& store_;
    JournalSettings settings_;
};

}  // namespace kanotify
