// SPDX-License-Identifier: GPL-2.0-or-later
// What one announcement session did, as its journal record carries it:
// shared by the announcement on MASTER (dispatch) and the periodic refresh
// while MASTER (announce_refresh), so both records read the same.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "announcer.hpp"

namespace kanotify {

// Adds namespace, interface, packets_sent, packet_errors, outcome, error,
// note and the per-address results to `entry`.
void add_announce_outcome(nlohmann::ordered_json& entry, const std::string& netns, const AnnounceSession& session,
                          const std::string& note);

}  // namespace kanotify
