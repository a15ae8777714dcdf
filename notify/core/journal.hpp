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

// When an append is on disk. `synced`: before append() returns.
// `with_next_sync`: written in order like any other, on disk with the next
// synced append (fdatasync covers the whole file) or the kernel's own
// writeback; for lines that report on bookkeeping that is itself kept only
// in the page cache (a delivery's outcome, whose pending entry is never
// synced), so that a power cut loses both or neither.
enum class Durability { synced, with_next_sync };

class Journal {
  public:
    Journal(const StateStore& store, JournalSettings settings) : store_(store), settings_(settings) {}

    // Appends complete lines (each without its newline) in one write(),
    // makes them durable (see Durability), then rotates if the cap is
    // reached. A torn last line left by a crash is terminated first, so no
    // record is glued to it.
    [[nodiscard]] Result<void> append(const std::vector<std::string>& lines,
                                      Durability durability = Durability::synced) const;

    // The last `count` lines across the rotated files (0: all of them).
    [[nodiscard]] Result<JournalRead> tail(std::size_t count) const;

    static constexpr const char* file_name = "journal.jsonl";

  private:
    [[nodiscard]] Result<void> rotate() const;

    const StateStore& store_;
    JournalSettings settings_;
    mutable UniqueFd lock_fd_;  // .locks/journal, opened on the first append
};

}  // namespace kanotify
