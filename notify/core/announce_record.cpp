// SPDX-License-Identifier: GPL-2.0-or-later
#include "announce_record.hpp"

namespace kanotify {

void add_announce_outcome(nlohmann::ordered_json& entry, const std::string& netns, const AnnounceSession& session,
                          const std::string& note) {
    entry["namespace"] = netns;
    entry["interface"] = session.interface();
    entry["packets_sent"] = session.packets_sent();
    entry["packet_errors"] = session.packet_errors();
    entry["outcome"] = !session.error().empty()       ? "failed"
                       : session.packet_errors() > 0 ? "partial"
                       : session.packets_sent() > 0  ? "sent"
                                                     : "nothing-sent";
    if (!session.error().empty())
        entry["error"] = session.error();
    if (!note.empty())
        entry["note"] = note;
    auto addresses = nlohmann::ordered_json::array();
    for (const auto& o : session.outcomes()) {
        nlohmann::ordered_json a;
        a["address"] = o.address;
        a["result"] = o.result;
        a["sent"] = o.sent;
        a["errors"] = o.errors;
        if (!o.reason.empty())
            a["reason"] = o.reason;
        addresses.push_back(std::move(a));
    }
    entry["addresses"] = std::move(addresses);
}

}  // namespace kanotify
