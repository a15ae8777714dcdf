// SPDX-License-Identifier: GPL-2.0-or-later
#include "systemd_units.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "json_line.hpp"

namespace kanotify {

namespace {

constexpr const char* systemd_service = "org.freedesktop.systemd1";
constexpr const char* systemd_path = "/org/freedesktop/systemd1";
constexpr const char* manager_interface = "org.freedesktop.systemd1.Manager";

std::uint64_t monotonic_usec() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000 + static_cast<std::uint64_t>(t.tv_nsec) / 1000;
}

bool is_unit_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '_' ||
           c == '.' || c == '-' || c == '\\' || c == '@';
}

constexpr std::array<std::string_view, 11> unit_suffixes = {".service", ".socket", ".target", ".device", ".mount",
                                                            ".automount", ".swap", ".timer", ".path", ".slice",
                                                            ".scope"};

}  // namespace

std::optional<UnitAction> unit_action_for(State state) {
    switch (state) {
    case State::master:
        return UnitAction::start;
    case State::backup:
    case State::fault:
    case State::stop:
    case State::deleted:
        return UnitAction::stop;
    default:
        return std::nullopt;
    }
}

std::string_view to_string(UnitAction action) {
    return action == UnitAction::start ? "start" : "stop";
}

std::string systemd_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = text[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
                    c == '_' || (c == '.' && i > 0);
        if (keep)
            out += c;
        else if (c == '/')
            out += '-';
        else
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
    return out;
}

std::string master_target_for(std::string_view name) {
    return fmt::format("kanotify-master@{}.target", systemd_escape(name));
}

Result<void> validate_unit_name(std::string_view unit) {
    auto bad = [&](std::string_view why) {
        return make_error(ErrorKind::invalid, fmt::format("unit {} {}", quote(unit), why));
    };
    if (unit.empty() || unit.size() > 255)
        return bad("must be 1 to 255 characters long");
    if (!std::all_of(unit.begin(), unit.end(), is_unit_char))
        return bad("may only contain ASCII letters, digits and \":_.-\\@\"");
    auto dot = unit.rfind('.');
    if (dot == std::string_view::npos || dot == 0 ||
        std::find(unit_suffixes.begin(), unit_suffixes.end(), unit.substr(dot)) == unit_suffixes.end())
        return bad("has no unit type suffix (.service, .target, .socket, .timer, ...)");
    auto at = unit.find('@');
    if (at == 0)
        return bad("has an empty prefix");
    if (at != std::string_view::npos && (unit.find('@', at + 1) != std::string_view::npos || at + 1 == dot))
        return bad("is a template without an instance (name@instance.type)");
    return {};
}

SystemdUnits::~SystemdUnits() {
    for (auto& [bus, connection] : connections_)
        if (connection->job_removed)
            connection->api->sd_bus_slot_unref(connection->job_removed);
}

int SystemdUnits::on_job_removed(sd_bus_message* message, void* userdata, sd_bus_error*) {
    auto* connection = static_cast<Connection*>(userdata);
    std::uint32_t id = 0;
    const char* job = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (connection->api->sd_bus_message_read(message, "uoss", &id, &job, &unit, &result) >= 0 && job && result)
        connection->finished[job] = result;
    return 0;
}

Result<SystemdUnits::Connection*> SystemdUnits::connect(const SystemdSettings& settings) {
    if (auto it = connections_.find(settings.bus); it != connections_.end())
        return it->second.get();
    auto api = sd_bus_api();
    if (!api)
        return tl::unexpected(api.error());
    auto timeout_usec = static_cast<std::uint64_t>(settings.timeout_ms) * 1000;
    auto opened = open_bus(**api, settings.bus, timeout_usec);
    if (!opened)
        return tl::unexpected(opened.error());
    auto connection = std::make_unique<Connection>();
    connection->api = *api;
    connection->bus = std::move(*opened);
    // The match goes in before any job exists, so no JobRemoved can be missed;
    // one that arrives while a StartUnit reply is awaited is queued by sd-bus
    // and dispatched by the next sd_bus_process().
    int r = (*api)->sd_bus_match_signal(connection->bus.get(), &connection->job_removed, systemd_service,
                                        systemd_path, manager_interface, "JobRemoved", on_job_removed,
                                        connection.get());
    if (r < 0)
        return make_error(ErrorKind::unavailable,
                          fmt::format("cannot watch systemd's jobs on the {} bus: {}", settings.bus, std::strerror(-r)));
    // systemd sends its job signals only while some client is subscribed; the
    // subscription ends with the connection.
    BusError error(**api);
    sd_bus_message* raw = nullptr;
    r = (*api)->sd_bus_message_new_method_call(connection->bus.get(), &raw, systemd_service, systemd_path,
                                               manager_interface, "Subscribe");
    if (r >= 0) {
        MessagePtr call(raw, MessageCloser{*api});
        sd_bus_message* reply = nullptr;
        r = (*api)->sd_bus_call(connection->bus.get(), call.get(), timeout_usec, &error.error, &reply);
        if (reply)
            (*api)->sd_bus_message_unref(reply);
    }
    if (r < 0)
        return make_error(ErrorKind::unavailable, fmt::format("systemd on the {} bus refused Subscribe: {}",
                                                              settings.bus, error.describe(r)));
    return connections_.emplace(settings.bus, std::move(connection)).first->second.get();
}

void SystemdUnits::drop(const std::string& bus) {
    auto it = connections_.find(bus);
    if (it == connections_.end())
        return;
    if (it->second->job_removed)
        it->second->api->sd_bus_slot_unref(it->second->job_removed);
    connections_.erase(it);
}

UnitJob SystemdUnits::run_job(Connection& connection, const SdBusApi& api, const SystemdSettings& settings,
                              const std::string& unit, UnitAction action, bool& broken) {
    UnitJob job;
    job.unit = unit;
    job.action = action;
    auto started = monotonic_usec();
    auto timeout_usec = static_cast<std::uint64_t>(settings.timeout_ms) * 1000;
    auto deadline = started + timeout_usec;
    auto finish = [&](std::string result, std::string detail) {
        job.result = std::move(result);
        job.detail = std::move(detail);
        job.duration_usec = monotonic_usec() - started;
        return job;
    };

    sd_bus_message* raw = nullptr;
    int r = api.sd_bus_message_new_method_call(connection.bus.get(), &raw, systemd_service, systemd_path,
                                               manager_interface,
                                               action == UnitAction::start ? "StartUnit" : "StopUnit");
    if (r < 0)
        return finish("error", fmt::format("cannot create the call: {}", std::strerror(-r)));
    MessagePtr call(raw, MessageCloser{&api});
    r = api.sd_bus_message_append(raw, "ss", unit.c_str(), "replace");
    if (r < 0)
        return finish("error", fmt::format("cannot build the call: {}", std::strerror(-r)));
    BusError error(api);
    sd_bus_message* reply_raw = nullptr;
    r = api.sd_bus_call(connection.bus.get(), raw, timeout_usec, &error.error, &reply_raw);
    if (r < 0) {
        if (api.sd_bus_error_has_name(&error.error, "org.freedesktop.systemd1.NoSuchUnit") > 0 ||
            api.sd_bus_error_has_name(&error.error, "org.freedesktop.systemd1.LoadFailed") > 0)
            return finish("missing", error.describe(r));
        broken = r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE || r == -ESHUTDOWN;
        return finish("error", error.describe(r));
    }
    MessagePtr reply(reply_raw, MessageCloser{&api});
    const char* path = nullptr;
    r = api.sd_bus_message_read(reply_raw, "o", &path);
    if (r < 0 || !path)
        return finish("error", fmt::format("unexpected reply to {}: {}", action == UnitAction::start ? "StartUnit" : "StopUnit",
                                           std::strerror(r < 0 ? -r : EBADMSG)));
    job.job = path;
    while (true) {
        if (auto it = connection.finished.find(job.job); it != connection.finished.end()) {
            auto result = it->second;
            connection.finished.erase(it);
            return finish(result, {});
        }
        auto now = monotonic_usec();
        if (now >= deadline)
            return finish("timed-out", fmt::format("no JobRemoved for {} within {} ms", job.job, settings.timeout_ms));
        r = api.sd_bus_process(connection.bus.get(), nullptr);
        if (r < 0) {
            broken = true;
            return finish("error", fmt::format("connection to systemd lost: {}", std::strerror(-r)));
        }
        if (r == 0)
            (void)api.sd_bus_wait(connection.bus.get(), deadline - now);
    }
}

std::vector<UnitJob> SystemdUnits::apply(const SystemdSettings& settings, const std::vector<std::string>& units,
                                         UnitAction action) {
    std::vector<UnitJob> jobs;
    if (units.empty())
        return jobs;
    // Stopped in the reverse of the order they were started in.
    std::vector<std::string> order = units;
    if (action == UnitAction::stop)
        std::reverse(order.begin(), order.end());
    auto connection = connect(settings);
    for (const auto& unit : order) {
        if (!connection) {
            UnitJob job;
            job.unit = unit;
            job.action = action;
            job.result = "error";
            job.detail = connection.error().message;
            jobs.push_back(std::move(job));
            continue;
        }
        bool broken = false;
        jobs.push_back(run_job(**connection, *(*connection)->api, settings, unit, action, broken));
        if (broken) {
            // A new connection for the next unit (systemd re-executed, say).
            drop(settings.bus);
            connection = connect(settings);
        }
    }
    return jobs;
}

std::string unit_line(const Event& event, const UnitJob& job) {
    nlohmann::ordered_json entry;
    entry["type"] = "unit";
    entry["time_usec"] = realtime_usec();
    entry["pid"] = ::getpid();
    entry["kind"] = to_string(event.kind);
    entry["name"] = event.name;
    entry["state"] = to_string(event.state);
    entry["sequence"] = event.sequence;
    entry["unit"] = job.unit;
    entry["action"] = to_string(job.action);
    entry["result"] = job.result;
    if (!job.job.empty())
        entry["job"] = job.job;
    entry["duration_usec"] = job.duration_usec;
    if (!job.detail.empty())
        entry["detail"] = job.detail;
    return json_line(entry);
}

}  // namespace kanotify
