// SPDX-License-Identifier: GPL-2.0-or-later
#include "privileges.hpp"

#include "effective_capability.hpp"

#include <linux/capability.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <fmt/format.h>

namespace kanotify {

namespace {

void add_needs(const InstanceSettings& s, CapabilityNeeds& needs) {
    needs.enter_namespaces = needs.enter_namespaces || !s.netns.empty();
    // A [garp] table turns the announcer on: a packet socket.
    needs.raw_packets = needs.raw_packets || s.garp.enabled;
    needs.foreign_files = needs.foreign_files || !s.socket.path.empty();
    needs.switch_users = needs.switch_users || !s.hooks.user.empty();
    auto through_proc = [](const std::string& bus) { return bus.starts_with("unix:path=/proc/"); };
    needs.other_roots = needs.other_roots || through_proc(s.dbus.bus) ||
                        ((s.target || !s.units.empty()) && through_proc(s.systemd.bus)) ||
                        s.netns.starts_with("/proc/");
}

}  // namespace

std::vector<unsigned> CapabilityNeeds::capabilities() const {
    std::vector<unsigned> caps;
    if (enter_namespaces)
        caps.push_back(CAP_SYS_ADMIN);
    if (raw_packets)
        caps.push_back(CAP_NET_RAW);
    if (foreign_files)
        caps.push_back(CAP_DAC_OVERRIDE);
    if (switch_users) {
        caps.push_back(CAP_SETUID);
        caps.push_back(CAP_SETGID);
        caps.push_back(CAP_KILL);
    }
    if (other_roots)
        caps.push_back(CAP_SYS_PTRACE);
    return caps;
}

std::string CapabilityNeeds::describe() const {
    std::string out;
    auto add = [&](const char* name) { out += out.empty() ? name : fmt::format(",{}", name); };
    if (enter_namespaces)
        add("cap_sys_admin");
    if (raw_packets)
        add("cap_net_raw");
    if (foreign_files)
        add("cap_dac_override");
    if (switch_users) {
        add("cap_setuid");
        add("cap_setgid");
        add("cap_kill");
    }
    if (other_roots)
        add("cap_sys_ptrace");
    return out.empty() ? "none" : out;
}

CapabilityNeeds capabilities_for(const Config& config) {
    CapabilityNeeds needs;
    // node_exporter's textfile directory usually belongs to its own user.
    needs.foreign_files = !config.metrics_textfile.empty();
    add_needs(config.defaults, needs);
    for (const auto& [name, settings] : config.instances)
        add_needs(settings, needs);
    return needs;
}

Result<bool> keep_only(const CapabilityNeeds& needs) {
    if (::geteuid() != 0)
        return false;
    // Straight capget/capset: this runs before every transition is
    // dispatched, and libcap-ng cost a dlopen() and reads of /proc for the
    // same two calls (a quarter of a millisecond, which showed on the
    // announcer's first-frame latency).
    auto current = thread_capabilities();
    if (current.permitted == 0 && current.effective == 0)
        return make_error(ErrorKind::system, "cannot read this process's capabilities");
    std::uint64_t wanted = 0;
    for (auto cap : needs.capabilities())
        wanted |= std::uint64_t{1} << cap;
    // Only the permitted and effective sets: inheritable is emptied (empty
    // for a root process anyway), ambient follows permitted, and the
    // bounding set stays (see the header). The needs go into the permitted
    // set alone, within what this process has (a container's root may lack
    // some: the use then fails and says so): the effective set stays
    // empty, and each use raises its capability around itself
    // (EffectiveCapability).
    if (!set_thread_capabilities({.permitted = current.permitted & wanted, .effective = 0}))
        return system_error(fmt::format("cannot reduce this process's capabilities to {}", needs.describe()), errno);
    set_effective_on_demand(true);
    return true;
}

}  // namespace kanotify
