// SPDX-License-Identifier: GPL-2.0-or-later
// Fuzzes the neutron monitor's command line (parse_monitor_args, then
// validate_monitor_options), the flags the L3 agent passes to
// neutron-keepalived-state-change. The input is split on NUL bytes into
// words, the way they arrive in argv.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kanotify/event.hpp"
#include "netns.hpp"
#include "neutron_monitor.hpp"
#include "argv_words.hpp"

using namespace kanotify;

namespace {

constexpr std::size_t max_input = 16 * 1024;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

bool has_control(const std::string& text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

Result<MonitorOptions> parse(std::vector<std::string> words) {
    std::vector<char*> argv;
    for (auto& w : words)
        argv.push_back(w.data());
    return parse_monitor_args(std::span<char* const>(argv.data(), argv.size()));
}

// A refusal is one printable line that names what it refuses.
void check_refusal(const Error& error) {
    check(!error.message.empty());
    check(error.message.find('\n') == std::string::npos);
    check(error.message.find('\0') == std::string::npos);
}

// What every accepted command line satisfies: each value that becomes a
// path, a header, a log word or a namespace has the shape its use needs.
void check_accepted(const MonitorOptions& o) {
    check(validate_name(o.router_id).has_value());
    check(o.netns.empty() || validate_netns(o.netns).has_value());
    check(!has_control(o.netns));
    check(validate_interface(o.interface).has_value());
    check(!o.cidr.empty());
    for (const auto* path : {&o.conf_dir, &o.pid_file, &o.state_path})
        check(!path->empty() && path->size() <= 4000 && !has_control(*path));
    check(o.log_file.size() <= 4000 && !has_control(o.log_file));
    check(o.state_path.size() + sizeof "/keepalived-state-change" <= 108);
    check(o.neutron_state_names.empty() || o.neutron_state_names == "current" || o.neutron_state_names == "legacy");
}

// Written back as --flag=value, an accepted command line parses to the same options.
void check_round_trip(const MonitorOptions& o) {
    std::vector<std::string> words;
    auto text = [&](const char* flag, const std::string& value) {
        if (!value.empty())
            words.push_back(std::string("--") + flag + "=" + value);
    };
    text("router_id", o.router_id);
    text("namespace", o.netns);
    text("conf_dir", o.conf_dir);
    text("log-file", o.log_file);
    text("monitor_interface", o.interface);
    text("monitor_cidr", o.cidr);
    text("pid_file", o.pid_file);
    text("state_path", o.state_path);
    text("user", o.user);
    text("group", o.group);
    text("neutron_state_names", o.neutron_state_names);
    words.push_back(o.enable_conntrackd ? "--enable_conntrackd=true" : "--enable_conntrackd=false");
    words.push_back(o.debug ? "--debug=true" : "--debug=false");
    words.push_back(o.announce_non_ha ? "--announce_non_ha_addresses=true" : "--announce_non_ha_addresses=false");
    words.push_back("--initial_timeout_ms=" + std::to_string(o.initial_timeout.count()));
    auto again = parse(words);
    check(again.has_value());
    check(again->router_id == o.router_id && again->netns == o.netns && again->conf_dir == o.conf_dir &&
          again->log_file == o.log_file && again->interface == o.interface && again->cidr == o.cidr &&
          again->pid_file == o.pid_file && again->state_path == o.state_path && again->user == o.user &&
          again->group == o.group && again->neutron_state_names == o.neutron_state_names &&
          again->enable_conntrackd == o.enable_conntrackd && again->debug == o.debug &&
          again->announce_non_ha == o.announce_non_ha && again->initial_timeout == o.initial_timeout);
    check(again->ignored.empty());
    check(validate_monitor_options(*again).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    auto words = kanotify::fuzz::split_on_nul(std::string_view(reinterpret_cast<const char*>(data), size));
    auto options = parse(words);
    if (!options) {
        check_refusal(options.error());
        return 0;
    }
    auto valid = validate_monitor_options(*options);
    if (!valid) {
        check_refusal(valid.error());
        return 0;
    }
    check_accepted(*options);
    check_round_trip(*options);
    return 0;
}
