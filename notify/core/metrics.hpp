// SPDX-License-Identifier: GPL-2.0-or-later
// Prometheus textfile output (node_exporter's textfile collector): the whole
// file is rewritten atomically after each transition or batch, so a scrape
// never sees half of it. Counters live in the state directory, so every
// argv process continues them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/error.hpp"
#include "state_store.hpp"

namespace kanotify {

// Adds one to a counter kept in the state directory (".locks/<name>").
[[nodiscard]] Result<void> increment_counter(const StateStore& store, const std::string& name);
// Adds `n` to a counter kept in the state directory.
[[nodiscard]] Result<void> add_to_counter(const StateStore& store, const std::string& name, std::uint64_t n);
// Adds one to the failure counter of `sink`.
[[nodiscard]] Result<void> count_delivery_failure(const StateStore& store, std::string_view sink);

inline constexpr std::string_view hook_results[] = {"ok", "failed", "timed-out", "superseded"};
// Announcement packets (gratuitous ARP, unsolicited NA): counters "announce:<result>".
inline constexpr std::string_view announce_results[] = {"sent", "failed"};

struct MetricsSnapshot {
    struct Instance {
        Kind kind = Kind::instance;
        std::string name;
        std::optional<State> state;
        InstanceRecord record;
    };
    std::vector<Instance> instances;
    std::map<std::string, std::uint64_t> failures;  // per sink
    std::map<std::string, std::uint64_t> pending;   // per sink
    std::map<std::string, std::uint64_t> hooks;     // per result
    std::map<std::string, std::uint64_t> announcements;  // packets, per result
};

[[nodiscard]] Result<MetricsSnapshot> collect_metrics(const StateStore& store,
                                                      const std::map<std::string, std::vector<std::string>>& pending,
                                                      const std::vector<std::string>& sinks);
[[nodiscard]] std::string render_metrics(const MetricsSnapshot& snapshot);
// Writes `text` to `path` through a temporary file in the same directory.
[[nodiscard]] Result<void> write_textfile(const std::string& path, std::string_view text);

}  // namespace kanotify
