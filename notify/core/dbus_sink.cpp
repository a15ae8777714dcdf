// SPDX-License-Identifier: GPL-2.0-or-later
#include "dbus_sink.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace kanotify {

namespace {

constexpr const char* default_system_bus = "/run/dbus/system_bus_socket";

}  // namespace

bool system_bus_absent(const std::string& bus) {
    if (bus != "system" || ::secure_getenv("DBUS_SYSTEM_BUS_ADDRESS"))
        return false;
    return ::access(default_system_bus, F_OK) != 0;
}

DbusConnections::DbusConnections(Sleep sleep) : sleep_(std::move(sleep)) {
    if (!sleep_)
        sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

Result<sd_bus*> DbusConnections::connect(const std::string& bus, std::int64_t timeout_ms) {
    if (auto it = buses_.find(bus); it != buses_.end())
        return it->second.get();
    auto api = sd_bus_api();
    if (!api)
        return tl::unexpected(api.error());
    auto opened = open_bus(**api, bus, static_cast<std::uint64_t>(timeout_ms) * 1000);
    if (!opened)
        return tl::unexpected(opened.error());
    auto& slot = buses_.emplace(bus, std::move(*opened)).first->second;
    return slot.get();
}

void DbusConnections::drop(const std::string& bus) {
    buses_.erase(bus);
}

Result<MessagePtr> DbusConnections::build(sd_bus* bus, const SdBusApi& api, const Delivery& delivery,
                                          const DbusDetails& details, bool signal, const std::string& destination) {
    const auto& e = delivery.event;
    char* path = nullptr;
    int r = api.sd_bus_path_encode(e.kind == Kind::group ? "/org/kanotify/group" : "/org/kanotify/instance",
                                   e.name.c_str(), &path);
    if (r < 0)
        return make_error(ErrorKind::system, fmt::format("cannot encode an object path: {}", std::strerror(-r)));
    std::unique_ptr<char, decltype(&std::free)> path_owner(path, &std::free);
    sd_bus_message* raw = nullptr;
    r = signal ? api.sd_bus_message_new_signal(bus, &raw, path, dbus_instance_interface, "StateChanged")
               : api.sd_bus_message_new_method_call(bus, &raw, destination.c_str(), dbus_agent_path,
                                                    dbus_agent_interface, "Transition");
    if (r < 0)
        return make_error(ErrorKind::system, fmt::format("cannot create a D-Bus message: {}", std::strerror(-r)));
    MessagePtr message(raw, MessageCloser{&api});
    if (!signal)
        (void)api.sd_bus_message_set_auto_start(raw, 0);  // a consumer that is not there is retried, not activated
    std::string previous = delivery.previous ? std::string(to_string(*delivery.previous)) : std::string();
    r = api.sd_bus_message_append(raw, "sssutt", e.name.c_str(), std::string(to_string(e.state)).c_str(),
                                  previous.c_str(), static_cast<std::uint32_t>(e.priority.value_or(0)),
                                  static_cast<std::uint64_t>(e.sequence), static_cast<std::uint64_t>(e.time_usec));
    auto put = [&](const char* key, const std::string& value) {
        if (r >= 0 && !value.empty())
            r = api.sd_bus_message_append(raw, "{sv}", key, "s", value.c_str());
    };
    if (r >= 0)
        r = api.sd_bus_message_open_container(raw, 'a', "{sv}");
    put("kind", std::string(to_string(e.kind)));
    put("source", std::string(to_string(e.source)));
    put("namespace", details.netns);
    put("interface", details.interface);
    put("router_id", delivery.router_id);
    if (r >= 0 && !details.addresses.empty()) {
        std::vector<char*> strv;
        for (const auto& a : details.addresses)
            strv.push_back(const_cast<char*>(a.c_str()));
        strv.push_back(nullptr);
        r = api.sd_bus_message_open_container(raw, 'e', "sv");
        if (r >= 0)
            r = api.sd_bus_message_append(raw, "s", "addresses");
        if (r >= 0)
            r = api.sd_bus_message_open_container(raw, 'v', "as");
        if (r >= 0)
            r = api.sd_bus_message_append_strv(raw, strv.data());
        if (r >= 0)
            r = api.sd_bus_message_close_container(raw);
        if (r >= 0)
            r = api.sd_bus_message_close_container(raw);
    }
    if (r >= 0)
        r = api.sd_bus_message_close_container(raw);
    if (r < 0)
        return make_error(ErrorKind::system, fmt::format("cannot build a D-Bus message: {}", std::strerror(-r)));
    return message;
}

DeliveryReport DbusConnections::emit_signal(const DbusSettings& settings, const Delivery& delivery,
                                            const DbusDetails& details) {
    DeliveryReport report;
    // Twice at most: a resident reader's connection may have died with the
    // bus daemon since the last signal; a fresh one is tried once.
    for (int attempt = 0; attempt < 2 && !report.delivered; ++attempt) {
        ++report.attempts;
        auto bus = connect(settings.bus, settings.timeout_ms);
        if (!bus) {
            report.error = bus.error().message;
            return report;
        }
        const auto* api = *sd_bus_api();
        auto message = build(*bus, *api, delivery, details, true, {});
        if (!message) {
            report.error = message.error().message;
            return report;
        }
        int r = api->sd_bus_send(*bus, message->get(), nullptr);
        if (r >= 0)
            r = api->sd_bus_flush(*bus);
        if (r < 0) {
            drop(settings.bus);
            report.error =
                fmt::format("cannot send StateChanged on the {} bus: {}", settings.bus, std::strerror(-r));
            continue;
        }
        report.delivered = true;
        report.error.clear();
    }
    return report;
}

DeliveryReport DbusConnections::call_transition(const DbusSettings& settings, const Delivery& delivery,
                                                const DbusDetails& details, bool single_attempt) {
    DeliveryReport report;
    auto backoff = std::chrono::milliseconds(100);
    auto tries = single_attempt ? 1 : settings.retries + 1;
    for (std::int64_t attempt = 0; attempt < tries; ++attempt) {
        if (attempt > 0) {
            sleep_(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
        ++report.attempts;
        auto bus = connect(settings.bus, settings.timeout_ms);
        if (!bus) {
            report.error = bus.error().message;
            continue;
        }
        const auto* api = *sd_bus_api();
        auto message = build(*bus, *api, delivery, details, false, settings.destination);
        if (!message) {
            report.error = message.error().message;
            return report;  // our own fault: retrying cannot help
        }
        BusError error{*api};
        sd_bus_message* reply = nullptr;
        int r = api->sd_bus_call(*bus, message->get(), static_cast<std::uint64_t>(settings.timeout_ms) * 1000,
                                 &error.error, &reply);
        if (reply)
            api->sd_bus_message_unref(reply);
        if (r >= 0) {
            report.delivered = true;
            report.error.clear();
            return report;
        }
        report.error = fmt::format("Transition on {}: {}", settings.destination, error.describe(r));
        // A dead connection reports errors too (sd-bus names some of them),
        // so every failure reconnects: cheap next to a retry's backoff.
        drop(settings.bus);
    }
    return report;
}

}  // namespace kanotify
