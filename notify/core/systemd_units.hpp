// SPDX-License-Identifier: GPL-2.0-or-later
// systemd units bound to the VRRP state, through sd-bus to
// org.freedesktop.systemd1 (libsystemd loaded on first use):
// - `units = [...]` of an instance are started (mode "replace") on MASTER and
//   stopped on BACKUP, FAULT, STOP and DELETED;
// - `target = true` does the same with the shipped template
//   kanotify-master@<escaped name>.target, so a service needs no kanotify
//   configuration to follow the master (BindsTo= and WantedBy= the target).
// Every job is awaited through the manager's JobRemoved signal, within the
// configured timeout, and its result is what gets journalled.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/event.hpp"
#include "sd_bus_api.hpp"

namespace kanotify {

enum class UnitAction { start, stop };

// What the state asks of the units: MASTER starts them; BACKUP, FAULT, STOP
// and DELETED stop them; events that are not states ask nothing.
[[nodiscard]] std::optional<UnitAction> unit_action_for(State state);
[[nodiscard]] std::string_view to_string(UnitAction action);

// `systemd-escape` of a string used as a unit instance name: ASCII letters,
// digits, ':', '_' and '.' (not leading) stay; '/' becomes '-'; every other
// byte becomes \xNN.
[[nodiscard]] std::string systemd_escape(std::string_view text);

// kanotify-master@<escaped name>.target
[[nodiscard]] std::string master_target_for(std::string_view name);

// A unit name systemd would accept: a name of [A-Za-z0-9:_.\-@] (at most
// 255 bytes) with a known unit type suffix, a template only with an instance.
[[nodiscard]] Result<void> validate_unit_name(std::string_view unit);

struct UnitJob {
    std::string unit;
    UnitAction action = UnitAction::start;
    // systemd's job result (done, failed, canceled, timeout, dependency,
    // skipped, invalid), or ours: "missing" (no such unit), "timed-out"
    // (no JobRemoved within the timeout), "error" (the bus or the call failed).
    std::string result;
    std::string job;     // the job's object path, when one was created
    std::string detail;  // the D-Bus error or what went wrong
    std::uint64_t duration_usec = 0;

    [[nodiscard]] bool ok() const { return result == "done"; }
};

class SystemdUnits {
  public:
    SystemdUnits() = default;
    SystemdUnits(const SystemdUnits&) = delete;
    SystemdUnits& operator=(const SystemdUnits&) = delete;
    SystemdUnits(SystemdUnits&&) = delete;
    SystemdUnits& operator=(SystemdUnits&&) = delete;
    ~SystemdUnits();

    // Starts (in the listed order) or stops (in the reverse order) each unit,
    // one job at a time, each awaited.
    [[nodiscard]] std::vector<UnitJob> apply(const SystemdSettings& settings, const std::vector<std::string>& units,
                                             UnitAction action);

  private:
    struct Connection {
        const SdBusApi* api = nullptr;
        BusPtr bus;
        sd_bus_slot* job_removed = nullptr;
        std::map<std::string, std::string> finished;  // job path -> result, filled by JobRemoved
    };
    [[nodiscard]] Result<Connection*> connect(const SystemdSettings& settings);
    void drop(const std::string& bus);
    [[nodiscard]] UnitJob run_job(Connection& connection, const SdBusApi& api, const SystemdSettings& settings,
                                  const std::string& unit, UnitAction action, bool& broken);
    static int on_job_removed(sd_bus_message* message, void* userdata, sd_bus_error* error);

    std::map<std::string, std::unique_ptr<Connection>> connections_;
};

// The journal line of one job.
[[nodiscard]] std::string unit_line(const Event& event, const UnitJob& job);

}  // namespace kanotify
