// SPDX-License-Identifier: GPL-2.0-or-later
#include "delivery.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "json_line.hpp"

#include "fault_point.hpp"
#include "metrics.hpp"
#include "unix_socket_sink.hpp"

namespace kanotify {

namespace {

std::string_view to_string(DeliveryResult result) {
    switch (result) {
    case DeliveryResult::delivered:
        return "delivered";
    case DeliveryResult::pending:
        return "pending";
    case DeliveryResult::skipped:
        return "skipped";
    }
    return "pending";
}

}  // namespace

std::string delivery_line(const DeliveryOutcome& outcome) {
    nlohmann::ordered_json entry;
    entry["type"] = "delivery";
    entry["time_usec"] = realtime_usec();
    entry["pid"] = ::getpid();
    entry["sink"] = outcome.sink;
    entry["kind"] = to_string(outcome.event.kind);
    entry["name"] = outcome.event.name;
    entry["state"] = to_string(outcome.event.state);
    entry["sequence"] = outcome.event.sequence;
    entry["event_time_usec"] = outcome.event.time_usec;
    entry["outcome"] = to_string(outcome.result);
    entry["attempts"] = outcome.attempts;
    if (outcome.flushed)
        entry["flushed"] = true;
    if (!outcome.detail.empty())
        entry["detail"] = outcome.detail;
    return json_line(entry);
}

// What differs between the consumers; the guarantee (write-ahead pending
// entries, supersession, order) is the same for all of them.
struct Deliveries::Sink {
    const char* name;
    // Delivery is owed (pending entry, exit 69 when not acknowledged). A
    // D-Bus signal is not: it has no addressee to owe anything to.
    bool owed;
    bool (*enabled)(const InstanceSettings&);
    std::string (*target)(const InstanceSettings&);
};

namespace {

const Deliveries::Sink sinks[] = {
    {"socket", true, [](const InstanceSettings& s) { return !s.socket.path.empty(); },
     [](const InstanceSettings& s) { return "socket:" + s.socket.path; }},
    {"dbus", true, [](const InstanceSettings& s) { return !s.dbus.destination.empty(); },
     [](const InstanceSettings& s) { return "dbus:" + s.dbus.bus + ":" + s.dbus.destination; }},
    {"dbus-signal", false, [](const InstanceSettings& s) { return s.dbus.signal; },
     [](const InstanceSettings& s) { return "dbus-signal:" + s.dbus.bus; }},
};

DbusDetails details_of(const InstanceSettings& settings) {
    return DbusDetails{settings.netns, settings.interface, settings.addresses};
}

}  // namespace

std::string Deliveries::owed_key(std::string_view sink, const Event& event) {
    return fmt::format("{}/{}:{}/{}/{}", sink, to_string(event.kind), event.name, event.sequence, event.time_usec);
}

std::vector<std::string> Deliveries::sink_names() {
    std::vector<std::string> out;
    for (const auto& sink : sinks)
        out.emplace_back(sink.name);
    return out;
}

bool Deliveries::enabled_anywhere(const Sink& sink) const {
    if (sink.enabled(config_.defaults))
        return true;
    for (const auto& [name, settings] : config_.instances)
        if (sink.enabled(settings))
            return true;
    return false;
}

bool Deliveries::configured() const {
    for (const auto& sink : sinks)
        if (enabled_anywhere(sink))
            return true;
    return false;
}

DeliveryOutcome Deliveries::deliver_to(const Sink& sink, const Delivery& delivery, const InstanceSettings& settings,
                                       bool single_attempt, bool flushed) {
    DeliveryOutcome result;
    result.sink = sink.name;
    result.event = delivery.event;
    result.flushed = flushed;
    auto target = sink.target(settings);
    if (down_.count(target)) {
        result.detail = fmt::format("{} failed earlier in this batch", sink.name);
        result.result = sink.owed ? DeliveryResult::pending : DeliveryResult::skipped;
        return result;
    }
    DeliveryReport report;
    if (std::string_view(sink.name) == "socket") {
        auto socket = settings.socket;
        if (single_attempt)
            socket.retries = 0;
        report = UnixSocketSink(socket).deliver(delivery);
    } else if (std::string_view(sink.name) == "dbus") {
        report = dbus_.call_transition(settings.dbus, delivery, details_of(settings), single_attempt);
    } else {
        if (system_bus_absent(settings.dbus.bus)) {
            result.result = DeliveryResult::skipped;
            result.detail = std::string(no_bus_detail);
            return result;
        }
        report = dbus_.emit_signal(settings.dbus, delivery, details_of(settings));
    }
    result.attempts = report.attempts;
    if (report.delivered) {
        result.result = DeliveryResult::delivered;
    } else {
        down_.insert(target);
        result.result = sink.owed ? DeliveryResult::pending : DeliveryResult::skipped;
        result.detail = report.error;
        if (auto counted = count_delivery_failure(store_, sink.name); !counted)
            result.detail += "; " + counted.error().describe();
    }
    return result;
}

namespace {

// neutron's agent knows primary, backup and fault only: nothing else is
// sent, or owed, to a router.
bool applicable(const Deliveries::Sink& sink, const InstanceSettings& settings, const Event& event,
                std::string_view neutron_names) {
    return std::string_view(sink.name) != "socket" || settings.router_id.empty() ||
           neutron_state(event.state, neutron_names).has_value();
}

}  // namespace

Result<const PendingStore*> Deliveries::pending_store(const char* sink) const {
    if (auto found = pending_.find(std::string_view(sink)); found != pending_.end())
        return &found->second;
    auto opened = PendingStore::open(store_, sink);
    if (!opened)
        return tl::unexpected(opened.error());
    return &pending_.emplace(sink, std::move(*opened)).first->second;
}

void Deliveries::owe(const Event& event, const Outcome& outcome) {
    const auto& settings = config_.for_instance(event.name);
    Delivery delivery{event, outcome.previous, settings.router_id, config_.neutron_state_names};
    for (const auto& sink : sinks)
        if (sink.owed && sink.enabled(settings) && applicable(sink, settings, event, config_.neutron_state_names))
            if (auto pending = pending_store(sink.name))
                if ((*pending)->put(delivery))  // on failure deliver() tries again and reports it
                    owed_.insert(owed_key(sink.name, event));
}

std::vector<DeliveryOutcome> Deliveries::deliver(const Event& event, const Outcome& outcome) {
    std::vector<DeliveryOutcome> out;
    const auto& settings = config_.for_instance(event.name);
    Delivery delivery{event, outcome.previous, settings.router_id, config_.neutron_state_names};
    for (const auto& sink : sinks) {
        if (!sink.enabled(settings))
            continue;
        if (!applicable(sink, settings, event, config_.neutron_state_names)) {
            DeliveryOutcome skipped;
            skipped.sink = sink.name;
            skipped.event = event;
            skipped.result = DeliveryResult::skipped;
            skipped.detail = fmt::format("{} has no neutron state to report", to_string(event.state));
            out.push_back(std::move(skipped));
            continue;
        }
        const PendingStore* pending = nullptr;
        std::string pending_error;
        if (sink.owed) {
            // Written ahead: a process killed mid-retry still leaves it owed.
            // owe() usually wrote it already, before the state was committed.
            auto store = pending_store(sink.name);
            if (!store)
                pending_error = store.error().describe();
            else if (owed_.erase(owed_key(sink.name, event)) == 0)
                if (auto put = (*store)->put(delivery); !put)
                    pending_error = put.error().describe();
            if (store && pending_error.empty())
                pending = *store;
        }
        crash_point("delivery:pending-written");
        auto result = deliver_to(sink, delivery, settings, false, false);
        crash_point("delivery:attempted");
        if (result.result == DeliveryResult::delivered && pending)
            if (auto removed = pending->remove(event.kind, event.name); !removed)
                result.detail = removed.error().describe();  // delivered again by a later flush: harmless
        crash_point("delivery:done");
        if (!pending_error.empty())
            result.detail += (result.detail.empty() ? "" : "; ") + pending_error;
        out.push_back(std::move(result));
    }
    return out;
}

std::vector<DeliveryOutcome> Deliveries::flush(const std::set<std::pair<Kind, std::string>>& skip, bool single_attempt,
                                               std::size_t* remaining) {
    std::vector<DeliveryOutcome> out;
    std::size_t left = 0;
    for (const auto& sink : sinks) {
        if (!sink.owed)
            continue;
        // Entries of a sink no instance has configured cannot go anywhere:
        // the flush that precedes every transition does not even open its
        // directory; a caller who asks what remains gets them counted.
        bool enabled = enabled_anywhere(sink);
        if (!enabled && !remaining)
            continue;
        auto opened = pending_store(sink.name);
        if (!opened)
            continue;
        const PendingStore* pending = *opened;
        if (!enabled) {
            (void)pending->list(nullptr, [&left](Kind, const std::string&) {
                ++left;
                return false;
            });
            continue;
        }
        // Superseded by a transition being delivered now, or busy (its
        // holder delivers): passed over before the entry is even read.
        auto worth_reading = [&](Kind kind, const std::string& name) {
            if (skip.count({kind, name}))
                return false;
            auto lock = store_.try_lock(kind, name);
            if (!lock || !*lock) {
                ++left;
                return false;
            }
            return true;
        };
        auto entries = pending->list(nullptr, worth_reading);
        if (!entries)
            continue;
        for (auto& entry : *entries) {
            const auto& event = entry.delivery.event;
            const auto& settings = config_.for_instance(event.name);
            auto lock = store_.try_lock(event.kind, event.name);
            if (!lock || !*lock || !sink.enabled(settings)) {
                ++left;  // busy (its holder delivers), or no longer configured
                continue;
            }
            // Re-read under the lock: the holder before us may have replaced it.
            auto text = read_small_file(pending->dir_fd(), entry.file, 8192);
            if (!text || !*text)
                continue;  // delivered meanwhile
            auto delivery = parse_delivery_json(**text);
            if (!delivery)
                continue;
            delivery->neutron_state_names = config_.neutron_state_names;
            // A crash between owing and recording leaves an entry for a
            // state that was never recorded: what is owed is the recorded
            // state, so that is what goes out.
            if (is_recorded_state(delivery->event.state)) {
                auto recorded = store_.read(event.kind, event.name);
                if (recorded && *recorded && **recorded != delivery->event.state) {
                    delivery->event.state = **recorded;
                    delivery->event.priority.reset();
                    delivery->event.sequence = 0;
                    delivery->previous.reset();
                }
            }
            auto result = deliver_to(sink, *delivery, settings, single_attempt, true);
            if (result.result == DeliveryResult::delivered)
                (void)pending->remove(event.kind, event.name);
            else
                ++left;
            out.push_back(std::move(result));
        }
    }
    if (remaining)
        *remaining = left;
    return out;
}

std::map<std::string, std::vector<std::string>> Deliveries::pending_summary() const {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& sink : sinks) {
        if (!sink.owed)
            continue;
        auto pending = pending_store(sink.name);
        if (!pending)
            continue;
        if (auto entries = (*pending)->list())
            for (const auto& entry : *entries)
                out[entry.file].push_back(sink.name);
    }
    return out;
}

}  // namespace kanotify
