// SPDX-License-Identifier: GPL-2.0-or-later
// Configuration: /etc/kanotify/kanotify.toml, then command-line flags.
// Every key of DESIGN.md's Configuration section is parsed and type-checked;
// unknown keys are errors, so a typo never silently disables an action.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kanotify/error.hpp"

namespace kanotify {

struct GarpSettings {
    bool enabled = false;  // a [garp] table (global or the instance's) is present
    std::string mode = "request";  // request | reply | both
    std::int64_t count = 5;
    std::int64_t interval_ms = 200;
    std::int64_t delay_ms = 0;
    std::int64_t refresh_s = 0;
    std::int64_t rate_pps = 1000;
};

struct DbusSettings {
    std::string bus = "system";
    bool signal = true;
    std::string destination;
    std::string name;  // bus name the FIFO reader owns to serve properties; empty: off
    std::int64_t timeout_ms = 2000;
    std::int64_t retries = 3;
};

struct SocketSettings {
    std::string path;
    std::int64_t owner_uid = -1;
    // Not a configuration key: the neutron monitor also accepts a listener
    // run by root besides the agent's own uid (root can take the path anyway).
    bool root_owner_too = false;
    std::int64_t timeout_ms = 5000;
    std::int64_t retries = 5;
};

struct ConntrackdSettings {
    bool enabled = false;
    std::string config;
};

using Argv = std::vector<std::string>;

struct HookSettings {
    std::map<std::string, std::vector<Argv>> by_state;  // master, backup, ..., any
    std::int64_t timeout_ms = 30000;
    bool coalesce = true;
    bool keepalived_args = false;
    std::string user;
};

struct SystemdSettings {
    std::string bus = "system";
    std::int64_t timeout_ms = 30000;
};

// What may differ per instance: every global table, plus the instance's own keys.
struct InstanceSettings {
    GarpSettings garp;
    DbusSettings dbus;
    SocketSettings socket;
    ConntrackdSettings conntrackd;
    HookSettings hooks;
    SystemdSettings systemd;
    std::string netns;        // `namespace`
    std::string interface;
    std::vector<std::string> addresses;
    std::string router_id;
    std::vector<std::string> units;
    bool target = false;
};

struct JournalSettings {
    std::int64_t max_bytes = 8 * 1024 * 1024;  // rotate journal.jsonl beyond this
    std::int64_t keep = 4;                     // rotated files kept: journal.jsonl.1 .. .N
};

struct FifoSettings {
    std::int64_t grace_ms = 1500;  // after SIGTERM: read until EOF (a reload) or this long: keepalived kills us first
    bool checker_lines = true;    // journal VS/RS lines of the global notify_fifo
};

struct Config {
    std::string source_path;  // the file read, empty when none
    std::string state_dir = "/var/lib/kanotify";
    std::string neutron_state_names = "current";
    std::string log_file;
    std::string log_level = "info";
    JournalSettings journal;
    FifoSettings fifo;
    std::string metrics_textfile;
    // Settings this version reads and validates but does not act on yet
    // (their actions arrive in later releases); the front-end warns.
    std::vector<std::string> not_yet_acted_on;
    InstanceSettings defaults;                        // the global tables
    std::map<std::string, InstanceSettings> instances;  // [instance.NAME]

    // The effective settings of one instance (its table, else the defaults).
    [[nodiscard]] const InstanceSettings& for_instance(const std::string& name) const;
};

// Namespace, interface and addresses are what they claim to be.
[[nodiscard]] Result<void> validate_instance_settings(const InstanceSettings& settings);

// Parse TOML text; `origin` names it in messages.
[[nodiscard]] Result<Config> parse_config(std::string_view text, const std::string& origin);

struct LoadOptions {
    std::string path;
    bool required = false;   // an explicit --config must exist; the default may not
    bool enforce_owner = false;  // running as root: refuse files others can write
};
[[nodiscard]] Result<Config> load_config(const LoadOptions& options);

}  // namespace kanotify
