// SPDX-License-Identifier: GPL-2.0-or-later
#include "delivery.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "unix_socket_sink.hpp"

namespace kanotify {

namespace {

constexpr const char* socket_sink = "socket";

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
    return entry.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool Deliveries::configured() const {
    if (!config_.defaults.socket.path.empty())
        return true;
    for (const auto& [name, settings] : config_.instances)
        if (!settings.socket.path.empty())
            return true;
    return false;
}

std::vector<DeliveryOutcome> Deliveries::deliver(const Event& event, const Outcome& outcome) {
    std::vector<DeliveryOutcome> out;
    const auto& settings = config_.for_instance(event.name);
    if (settings.socket.path.empty())
        return out;
    DeliveryOutcome result;
    result.sink = socket_sink;
    result.event = event;
    Delivery delivery{event, outcome.previous, settings.router_id, config_.neutron_state_names};
    if (!settings.router_id.empty() && !neutron_state(event.state, config_.neutron_state_names)) {
        // neutron's agent knows primary, backup and fault only.
        result.result = DeliveryResult::skipped;
        result.detail = fmt::format("{} has no neutron state to report", to_string(event.state));
        out.push_back(std::move(result));
        return out;
    }
    auto pending = PendingStore::open(store_, socket_sink);
    if (!pending) {
        result.detail = pending.error().describe();
    } else if (auto put = pending->put(delivery); !put) {
        result.detail = put.error().describe();
    }
    if (down_.count(settings.socket.path)) {
        result.detail = fmt::format("{} failed earlier in this batch; kept pending", settings.socket.path);
        out.push_back(std::move(result));
        return out;
    }
    UnixSocketSink sink(settings.socket);
    auto report = sink.deliver(delivery);
    result.attempts = report.attempts;
    if (report.delivered) {
        result.result = DeliveryResult::delivered;
        if (pending)
            if (auto removed = pending->remove(event.kind, event.name); !removed)
                result.detail = removed.error().describe();  // delivered again by the next flush: harmless
    } else {
        down_.insert(settings.socket.path);
        result.detail = report.error;
    }
    out.push_back(std::move(result));
    return out;
}

std::vector<DeliveryOutcome> Deliveries::flush(const std::set<std::pair<Kind, std::string>>& skip, bool single_attempt,
                                               std::size_t* remaining) {
    std::vector<DeliveryOutcome> out;
    std::size_t left = 0;
    auto pending = PendingStore::open(store_, socket_sink);
    if (!pending) {
        if (remaining)
            *remaining = 0;
        return out;
    }
    auto entries = pending->list();
    if (!entries) {
        if (remaining)
            *remaining = 0;
        return out;
    }
    for (auto& entry : *entries) {
        const auto& event = entry.delivery.event;
        if (skip.count({event.kind, event.name}))
            continue;  // superseded by a transition being delivered now
        const auto& settings = config_.for_instance(event.name);
        auto lock = store_.try_lock(event.kind, event.name);
        if (!lock || !*lock || settings.socket.path.empty() || down_.count(settings.socket.path)) {
            ++left;  // busy (its holder delivers), unconfigured, or the sink is down
            continue;
        }
        // Re-read under the lock: the holder before us may have replaced it.
        auto again = pending->list();
        const PendingEntry* current = nullptr;
        if (again)
            for (const auto& e : *again)
                if (e.file == entry.file)
                    current = &e;
        if (!current)
            continue;  // delivered meanwhile
        auto delivery = current->delivery;
        delivery.neutron_state_names = config_.neutron_state_names;
        auto sink_settings = settings.socket;
        if (single_attempt)
            sink_settings.retries = 0;
        UnixSocketSink sink(sink_settings);
        auto report = sink.deliver(delivery);
        DeliveryOutcome result;
        result.sink = socket_sink;
        result.event = delivery.event;
        result.attempts = report.attempts;
        result.flushed = true;
        if (report.delivered) {
            result.result = DeliveryResult::delivered;
            (void)pending->remove(event.kind, event.name);
        } else {
            result.detail = report.error;
            down_.insert(settings.socket.path);
            ++left;
        }
        out.push_back(std::move(result));
    }
    if (remaining)
        *remaining = left;
    return out;
}

std::map<std::string, std::vector<std::string>> Deliveries::pending_summary() const {
    std::map<std::string, std::vector<std::string>> out;
    auto pending = PendingStore::open(store_, socket_sink);
    if (!pending)
        return out;
    if (auto entries = pending->list())
        for (const auto& entry : *entries)
            out[entry.file].push_back(socket_sink);
    return out;
}

}  // namespace kanotify
