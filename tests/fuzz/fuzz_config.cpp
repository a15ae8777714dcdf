// SPDX-License-Identifier: GPL-2.0-or-later
// Fuzzes the TOML configuration reader: toml++'s parser and every table
// walker behind parse_config. A configuration it accepts must hold what
// the rest of kanotify relies on without checking again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ip_address.hpp"
#include "kanotify/config.hpp"
#include "kanotify/event.hpp"

using namespace kanotify;

namespace {

constexpr std::size_t max_input = 64 * 1024;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

bool one_of(const std::string& value, std::initializer_list<std::string_view> allowed) {
    for (auto a : allowed)
        if (value == a)
            return true;
    return false;
}

bool absolute_or_empty(const std::string& path) {
    return path.empty() || path.front() == '/';
}


void check_settings(const InstanceSettings& s) {
    check(validate_instance_settings(s).has_value());
    check(one_of(s.garp.mode, {"request", "reply", "both"}));
    check(s.garp.count >= 0 && s.garp.count <= 1000);
    check(s.garp.rate_pps >= 1);
    check(s.dbus.bus == "system" || s.dbus.bus == "user" || s.dbus.bus.starts_with("unix:"));
    check(s.dbus.timeout_ms >= 1 && s.dbus.retries >= 0 && s.dbus.retries <= 100);
    check(absolute_or_empty(s.socket.path));
    check(s.socket.owner_uid >= -1 && s.socket.owner_uid <= 0xfffffffe);
    check(s.socket.timeout_ms >= 1 && s.socket.retries >= 0 && s.socket.retries <= 100);
    check(s.systemd.bus == "system" || s.systemd.bus.starts_with("unix:"));
    check(s.hooks.timeout_ms >= 1);
    for (const auto& [state, argvs] : s.hooks.by_state) {
        check(one_of(state, {"master", "backup", "fault", "stop", "deleted", "master_rx_lower_pri", "any"}));
        for (const auto& argv : argvs)
            check(!argv.empty() && !argv.front().empty() && argv.front().front() == '/');
    }
    for (const auto& address : s.addresses)
        check(parse_ip_address(address).has_value());
    check(s.router_id.empty() || validate_name(s.router_id).has_value());
    // Strings go into paths, argv and headers: never a NUL byte.
    for (const auto* text : {&s.netns, &s.interface, &s.router_id, &s.socket.path, &s.dbus.destination,
                             &s.dbus.name, &s.conntrackd.config, &s.hooks.user})
        check(text->find('\0') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string origin = "fuzz.toml";
    auto config = parse_config(text, origin);
    if (!config) {
        check(config.error().kind == ErrorKind::config || config.error().kind == ErrorKind::invalid);
        check(!config.error().message.empty());
        // The same text gets the same verdict.
        auto again = parse_config(text, origin);
        check(!again && again.error().message == config.error().message);
        return 0;
    }
    const auto& c = *config;
    check(c.source_path == origin);
    check(!c.state_dir.empty() && c.state_dir.front() == '/');
    check(c.state_dir.find('\0') == std::string::npos);
    check(one_of(c.neutron_state_names, {"current", "legacy"}));
    check(one_of(c.log_level, {"debug", "info", "notice", "warning", "error"}));
    check(c.journal.max_bytes >= 4096 && c.journal.keep >= 1 && c.journal.keep <= 1000);
    check(c.fifo.grace_ms >= 0 && c.fifo.grace_ms <= 1800);
    check(absolute_or_empty(c.metrics_textfile));
    check_settings(c.defaults);
    for (const auto& [name, settings] : c.instances) {
        check(validate_name(name).has_value());
        check_settings(settings);
        check(&c.for_instance(name) == &settings);
    }
    return 0;
}
