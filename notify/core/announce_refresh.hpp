// SPDX-License-Identifier: GPL-2.0-or-later
// Periodic re-announcement while MASTER, in the resident front-end (the
// FIFO reader): `[garp] refresh_s` > 0 re-announces an instance's
// addresses every refresh_s seconds for as long as its recorded state is
// MASTER, as keepalived's garp_master_refresh does, so a switch or
// neighbour that lost or aged out the entry learns it again.
//
// Each refresh is an AnnounceSession exactly like the one a MASTER
// transition starts (same addresses, count, interval, delay and pacing),
// journalled as an "announce" record with "reason":"refresh". It never
// sleeps: the owner asks next_wake() when something is due (a period's end
// or a repeat packet of a refresh under way) and calls run_due() then, on
// its own thread, between two batches of transitions.
//
// A recorded state other than MASTER cancels the instance's refresh, and
// stops one under way; a new MASTER starts the period again from then.
// Before a refresh starts, the state on disk is asked once more (another
// front-end, the argv one, may have recorded a newer state meanwhile).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "announcer.hpp"
#include "kanotify/config.hpp"
#include "kanotify/event.hpp"

namespace kanotify {

class AnnounceRefresher {
  public:
    using Clock = AnnounceClock;
    // The instance's recorded state now; nullopt when it cannot be read
    // (then the refresh goes ahead on what this process last recorded).
    using RecordedState = std::function<std::optional<State>(const std::string& name)>;

    AnnounceRefresher(const Config& config, RecordedState recorded_state);

    // A state recorded for an instance at `now` (by this process, or found
    // recorded at start-up). MASTER with a refresh configured (re)starts
    // the period; anything else cancels it.
    void recorded(const std::string& name, State state, Clock::time_point now);

    // The earliest moment run_due() has something to do; nullopt: nothing
    // scheduled.
    [[nodiscard]] std::optional<Clock::time_point> next_wake() const;

    // Starts the refreshes whose period has ended, sends every packet due,
    // and returns the journal lines of the refreshes that ended (finished,
    // or cut short by a state other than MASTER).
    [[nodiscard]] std::vector<std::string> run_due(Clock::time_point now);

    // Journal lines waiting for the next run_due() (refreshes cut short).
    [[nodiscard]] std::vector<std::string> take_lines();

    // Instances with a refresh scheduled, for tests and status.
    [[nodiscard]] std::vector<std::string> scheduled() const;

    // Packets sent and failed by the refreshes ended since the last call
    // (the announcement counters of the metrics).
    struct Counts {
        std::uint64_t sent = 0;
        std::uint64_t failed = 0;
    };
    [[nodiscard]] Counts take_counts();

  private:
    struct Entry {
        Clock::time_point due{};  // the next refresh starts then
        std::uint64_t round = 0;  // refreshes started since MASTER
        std::optional<AnnounceSession> session;  // a refresh under way
    };
    void end_session(const std::string& name, Entry& entry, const std::string& note);

    const Config& config_;
    RecordedState recorded_state_;
    std::map<std::string, Entry> entries_;
    std::vector<std::string> lines_;
    Counts counts_;
};

}  // namespace kanotify
