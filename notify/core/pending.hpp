// SPDX-License-Identifier: GPL-2.0-or-later
// Deliveries not yet acknowledged, one file per sink and instance:
//   <state_dir>/pending/<sink>/instance:<name>   (group:<name> for groups)
// holding the latest undelivered transition as JSON. The entry is written
// before the first attempt and removed once delivered, so a process killed
// mid-retry (keepalived SIGKILLs a STOP script after a second) leaves it
// behind for the next invocation or `kanotify flush`. A newer transition of
// the instance overwrites it: only the latest state is owed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "http_message.hpp"
#include "kanotify/error.hpp"
#include "state_store.hpp"

namespace kanotify {

struct PendingEntry {
    std::string file;  // instance:<name> or group:<name>
    Delivery delivery;
};

class PendingStore {
  public:
    [[nodiscard]] static Result<PendingStore> open(const StateStore& store, const std::string& sink);

    [[nodiscard]] Result<void> put(const Delivery& delivery) const;
    [[nodiscard]] int dir_fd() const noexcept { return dir_.get(); }
    [[nodiscard]] Result<void> remove(Kind kind, const std::string& name) const;
    // Oldest first (by the transition's time, then sequence). Unreadable
    // entries are skipped and counted. `wanted`, when given, is asked
    // about each entry's instance before the entry is read: in a storm
    // most entries belong to instances another process is delivering, and
    // reading and parsing each of them in every process adds up.
    using Wanted = std::function<bool(Kind kind, const std::string& name)>;
    [[nodiscard]] Result<std::vector<PendingEntry>> list(std::size_t* unreadable = nullptr,
                                                         const Wanted& wanted = {}) const;

    // Removes the temporaries of entries whose writer was killed between
    // creating and renaming them (keepalived SIGKILLs the notify scripts it
    // stops waiting for). Every writer holds the instance's lock, so only a
    // temporary whose lock is free is abandoned. Returns how many went.
    [[nodiscard]] Result<std::size_t> remove_stale_temporaries() const;

  private:
    PendingStore(const StateStore& store, UniqueFd dir) : store_(&store), dir_(std::move(dir)) {}
    const StateStore* store_;  // outlives this object: it is opened from the store, for one use
    UniqueFd dir_;
};

[[nodiscard]] std::string pending_file_name(Kind kind, const std::string& name);
// Reads a delivery back from its JSON, validating every field.
[[nodiscard]] Result<Delivery> parse_delivery_json(std::string_view text);

}  // namespace kanotify
