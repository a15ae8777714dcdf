// SPDX-License-Identifier: GPL-2.0-or-later
#include "privileges.hpp"

#include "effective_capability.hpp"

#include <cap-ng.h>
#include <dlfcn.h>
#include <linux/capability.h>
#include <unistd.h>

#include <mutex>

#include <fmt/format.h>

namespace kanotify {

namespace {

// libcap-ng, loaded only when running as root: the argv front-end run as
// keepalived_script (or in tests) pays nothing for it.
struct CapNgApi {
#define KANOTIFY_CAPNG_FUNCTIONS(X) X(capng_clear) X(capng_update) X(capng_apply) X(capng_get_caps_process)
#define KANOTIFY_CAPNG_POINTER(name) decltype(&::name) name = nullptr;
    KANOTIFY_CAPNG_FUNCTIONS(KANOTIFY_CAPNG_POINTER)
#undef KANOTIFY_CAPNG_POINTER
};

Result<const CapNgApi*> capng_api() {
    static CapNgApi api;
    static std::string failure;
    static std::once_flag once;
    std::call_once(once, [] {
        void* library = ::dlopen("libcap-ng.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!library) {
            const char* why = ::dlerror();
            failure = fmt::format("cannot load libcap-ng.so.0: {}", why ? why : "unknown error");
            return;
        }
#define KANOTIFY_CAPNG_RESOLVE(name)                                                                                   \
    api.name = reinterpret_cast<decltype(api.name)>(::dlsym(library, #name));                                          \
    if (!api.name) {                                                                                                   \
        failure = "libcap-ng.so.0 has no " #name;                                                                      \
        return;                                                                                                        \
    }
        KANOTIFY_CAPNG_FUNCTIONS(KANOTIFY_CAPNG_RESOLVE)
#undef KANOTIFY_CAPNG_RESOLVE
    });
    if (!failure.empty())
        return make_error(ErrorKind::unavailable, failure);
    return &api;
}

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
    auto api = capng_api();
    if (!api)
        return tl::unexpected(api.error());
    const auto& capng = **api;
    if (capng.capng_get_caps_process() != 0)
        return make_error(ErrorKind::system, "cannot read this process's capabilities");
    // Only the permitted and effective sets: inheritable and ambient are
    // empty for a root process anyway, and the bounding set stays (see the
    // header). The needs go into the permitted set alone: the effective
    // set stays empty, and each use raises its capability around itself
    // (EffectiveCapability).
    capng.capng_clear(CAPNG_SELECT_CAPS);
    for (auto cap : needs.capabilities())
        if (capng.capng_update(CAPNG_ADD, CAPNG_PERMITTED, cap) != 0)
            return make_error(ErrorKind::system, fmt::format("cannot keep capability {}", cap));
    if (capng.capng_apply(CAPNG_SELECT_CAPS) != 0)
        return make_error(ErrorKind::system, fmt::format("cannot reduce this process's capabilities to {}",
                                                         needs.describe()));
    set_effective_on_demand(true);
    return true;
}

}  // namespace kanotify
