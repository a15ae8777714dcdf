// SPDX-License-Identifier: GPL-2.0-or-later
// The one entry point every front-end calls: an Event (or an ordered batch
// of them) in, the state recorded first, then the configured actions, and
// one journal line per event with every outcome.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/error.hpp"
#include "kanotify/event.hpp"

namespace kanotify {

enum class Status {
    applied,    // the state file now holds this state (or already did)
    recorded,   // an event about a state (MASTER_RX_LOWER_PRI, *_PRIORITY): journalled only
    stale,      // older than what was already applied: journalled, not applied
    failed,     // the state could not be recorded (error says why)
};

[[nodiscard]] std::string_view to_string(Status status) noexcept;

struct Outcome {
    Status status = Status::failed;
    std::optional<State> previous;  // the recorded state before this event
    bool written = false;           // the state file was replaced
    std::string reason;             // why stale or failed
    std::string note;               // anything else worth keeping (e.g. not reconciled)
    bool undelivered = false;       // a consumer stayed unreachable: kept pending
    std::vector<std::string> unit_failures;  // systemd jobs that did not end "done" (journalled in full)
};

struct FlushReport {
    std::size_t delivered = 0;
    std::size_t remaining = 0;  // still pending (consumer unreachable, or instance busy)
};

struct Seams;  // test seams, see seams.hpp

class Dispatcher {
  public:
    [[nodiscard]] static Result<Dispatcher> open(const Config& config);
    [[nodiscard]] static Result<Dispatcher> open(const Config& config, const Seams& seams);
    Dispatcher(Dispatcher&&) noexcept;
    Dispatcher& operator=(Dispatcher&&) noexcept;
    ~Dispatcher();

    // Handles events in order: per instance under its lock, sequences
    // checked, all state files of the batch made durable together, then one
    // journal append. Returns one Outcome per event; an Error only when the
    // journal itself could not be written (the states are still recorded).
    // `notes` (rejected_entry, checker_entry) go into the same journal write.
    [[nodiscard]] Result<std::vector<Outcome>> handle(std::span<const Event> events,
                                                      std::vector<std::string> notes = {});

    // Journals notes on their own (an invocation that could not be parsed).
    [[nodiscard]] Result<void> journal(std::vector<std::string> notes);

    // Delivers pending deliveries, oldest first, with the sinks' retries.
    [[nodiscard]] Result<FlushReport> flush();

    // Rewrites the Prometheus textfile when one is configured.
    [[nodiscard]] Result<void> write_metrics() const;

    // Instance key ("instance:VI_1") -> sinks with a pending delivery.
    [[nodiscard]] std::map<std::string, std::vector<std::string>> pending() const;

    // Removes temporaries a crash left behind; done by long-running readers at start.
    [[nodiscard]] Result<std::size_t> clean_up();

    // The highest sequence any instance has recorded: a restarted reader
    // continues above it, so its events are never mistaken for old ones.
    [[nodiscard]] Result<std::uint64_t> highest_sequence() const;

    [[nodiscard]] const std::string& state_dir() const;

  private:
    struct Impl;
    explicit Dispatcher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Journal line for one event and its outcome (exposed for tests and history).
[[nodiscard]] std::string journal_line(const Event& event, const Outcome& outcome);
// Journal lines for input that was not a transition: rejected input (quoted,
// never raw) and the checker's VS/RS lines of the global notify FIFO.
[[nodiscard]] std::string rejected_entry(Source source, std::string_view input, const Error& error,
                                         std::int64_t time_usec);
[[nodiscard]] std::string checker_entry(std::string_view line, std::int64_t time_usec);

}  // namespace kanotify
