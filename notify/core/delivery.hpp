// SPDX-License-Identifier: GPL-2.0-or-later
// Forwarding recorded transitions to their consumers, with the guarantee
// that the latest state of each instance is never lost and a consumer never
// gets an older state after a newer one:
// - every delivery is written ahead as a pending entry and removed once
//   acknowledged, all under the instance's lock;
// - pending entries of other instances are flushed, oldest first, before
//   new transitions are delivered; a newer transition supersedes the entry.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "dbus_sink.hpp"
#include "http_message.hpp"
#include "kanotify/config.hpp"
#include "kanotify/dispatch.hpp"
#include "pending.hpp"
#include "state_store.hpp"

namespace kanotify {

enum class DeliveryResult { delivered, pending, skipped };

struct DeliveryOutcome {
    std::string sink;
    Event event;
    DeliveryResult result = DeliveryResult::pending;
    int attempts = 0;
    std::string detail;  // the error, or why skipped
    bool flushed = false;  // an older pending entry delivered now
};

[[nodiscard]] std::string delivery_line(const DeliveryOutcome& outcome);

inline constexpr std::string_view no_bus_detail = "no system bus on this machine";

class Deliveries {
  public:
    Deliveries(const Config& config, const StateStore& store) : config_(config), store_(store) {}

    // A sink that failed is not tried again within a batch (its deliveries
    // go straight to pending); each batch starts afresh.
    void new_batch() {
        down_.clear();
        owed_.clear();
    }

    // Any sink configured anywhere (globally or for an instance)?
    [[nodiscard]] bool configured() const;

    // Records that every owed sink of the event's instance is owed it (under
    // the instance lock, before its state is committed).
    void owe(const Event& event, const Outcome& outcome);

    // Delivers one event whose instance lock the caller holds.
    [[nodiscard]] std::vector<DeliveryOutcome> deliver(const Event& event, const Outcome& outcome);

    // Delivers pending entries oldest first, skipping instances in `skip`
    // and instances whose lock another process holds. With `single_attempt`
    // a sink that fails once is left alone until the next flush.
    [[nodiscard]] std::vector<DeliveryOutcome> flush(const std::set<std::pair<Kind, std::string>>& skip,
                                                     bool single_attempt, std::size_t* remaining = nullptr);

    [[nodiscard]] static std::vector<std::string> sink_names();

    // Pending entries per instance key ("instance:VI_1") and sink name.
    [[nodiscard]] std::map<std::string, std::vector<std::string>> pending_summary() const;

    struct Sink;

  private:
    [[nodiscard]] DeliveryOutcome deliver_to(const Sink& sink, const Delivery& delivery,
                                             const InstanceSettings& settings, bool single_attempt, bool flushed);

    [[nodiscard]] bool enabled_anywhere(const Sink& sink) const;

    // A sink's pending directory, made and opened on first use, then kept
    // for the life of this object as the state directory is (a storm's
    // processes used to open each one four times per transition).
    [[nodiscard]] Result<const PendingStore*> pending_store(const char* sink) const;

    const Config& config_;
    const StateStore& store_;
    DbusConnections dbus_;
    mutable std::map<std::string, PendingStore, std::less<>> pending_;
    [[nodiscard]] static std::string owed_key(std::string_view sink, const Event& event);

    std::set<std::string> down_;  // sink targets that failed in this batch: straight to pending
    std::set<std::string> owed_;  // pending entries owe() wrote in this batch, not to be written twice
};

}  // namespace kanotify
