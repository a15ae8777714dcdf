// SPDX-License-Identifier: GPL-2.0-or-later
#include "announce_refresh.hpp"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "announce_record.hpp"
#include "json_line.hpp"

namespace kanotify {

namespace {

bool refreshes(const InstanceSettings& settings) {
    return settings.garp.enabled && settings.garp.count > 0 && settings.garp.refresh_s > 0;
}

// The same record a MASTER transition's announcement leaves, with the
// reason and the refresh's round in place of the event's sequence.
std::string refresh_line(const std::string& name, const InstanceSettings& settings, std::uint64_t round,
                         const AnnounceSession& session, const std::string& note) {
    nlohmann::ordered_json entry;
    entry["type"] = "announce";
    entry["time_usec"] = realtime_usec();
    entry["pid"] = ::getpid();
    entry["kind"] = to_string(Kind::instance);
    entry["name"] = name;
    entry["state"] = to_string(State::master);
    entry["reason"] = "refresh";
    entry["refresh_s"] = settings.garp.refresh_s;
    entry["round"] = round;
    add_announce_outcome(entry, settings.netns, session, note);
    return json_line(entry);
}

}  // namespace

AnnounceRefresher::AnnounceRefresher(const Config& config, RecordedState recorded_state)
    : config_(config), recorded_state_(std::move(recorded_state)) {}

void AnnounceRefresher::recorded(const std::string& name, State state, Clock::time_point now) {
    auto it = entries_.find(name);
    if (state != State::master || !refreshes(config_.for_instance(name))) {
        if (it != entries_.end()) {
            if (it->second.session)
                end_session(name, it->second, fmt::format("cut short: {} recorded", to_string(state)));
            entries_.erase(it);
        }
        return;
    }
    // A new MASTER: the transition itself announced just now, the period
    // counts from here. A refresh under way is superseded by that
    // announcement: its line is kept, its remaining packets dropped.
    if (it != entries_.end() && it->second.session)
        end_session(name, it->second, "cut short: MASTER recorded again");
    auto& entry = entries_[name];
    entry.round = 0;
    entry.due = now + std::chrono::seconds(config_.for_instance(name).garp.refresh_s);
}

std::optional<AnnounceRefresher::Clock::time_point> AnnounceRefresher::next_wake() const {
    std::optional<Clock::time_point> wake;
    for (const auto& [name, entry] : entries_) {
        auto at = entry.due;
        if (entry.session)
            if (auto next = entry.session->next_due())
                at = std::min(at, *next);
        if (!wake || at < *wake)
            wake = at;
    }
    return wake;
}

std::vector<std::string> AnnounceRefresher::run_due(Clock::time_point now) {
    PacketSockets sockets;  // this round's refreshes share one per namespace
    for (auto it = entries_.begin(); it != entries_.end();) {
        const auto& name = it->first;
        auto& entry = it->second;
        const auto& settings = config_.for_instance(name);
        if (!entry.session && entry.due <= now) {
            // Another front-end may have recorded a newer state meanwhile:
            // never announce for an instance that is no longer MASTER.
            if (recorded_state_) {
                auto state = recorded_state_(name);
                if (state && *state != State::master) {
                    it = entries_.erase(it);
                    continue;
                }
            }
            ++entry.round;
            entry.session = AnnounceSession::prepare(settings.netns, settings.interface, settings.addresses,
                                                     settings.garp, now, sockets);
            // The next period counts from this refresh's start, never from
            // a missed one: a late wake-up does not make refreshes bunch up.
            entry.due = now + std::chrono::seconds(settings.garp.refresh_s);
        }
        if (entry.session) {
            entry.session->send_due();
            if (!entry.session->next_due())
                end_session(name, entry, "");
        }
        ++it;
    }
    return take_lines();
}

void AnnounceRefresher::end_session(const std::string& name, Entry& entry, const std::string& note) {
    // finish() on a session with packets left would sleep until they are
    // sent: one cut short is reported as it stands, its socket closed.
    if (entry.session->next_due())
        entry.session->abandon();
    else
        entry.session->finish();
    const auto& session = *entry.session;
    lines_.push_back(refresh_line(name, config_.for_instance(name), entry.round, session, note));
    counts_.sent += session.packets_sent();
    counts_.failed += session.packet_errors();
    entry.session.reset();
}

std::vector<std::string> AnnounceRefresher::take_lines() {
    return std::exchange(lines_, {});
}

std::vector<std::string> AnnounceRefresher::scheduled() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_)
        out.push_back(name);
    return out;
}

AnnounceRefresher::Counts AnnounceRefresher::take_counts() {
    return std::exchange(counts_, {});
}

}  // namespace kanotify
