// SPDX-License-Identifier: GPL-2.0-or-later
#include "sd_bus_api.hpp"

#include <dlfcn.h>
#include <linux/capability.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "effective_capability.hpp"

namespace kanotify {

Result<BusPtr> open_bus(const SdBusApi& api, const std::string& bus, std::uint64_t timeout_usec) {
    std::string address = bus;
    if (bus == "system") {
        const char* env = ::secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        address = env ? env : "unix:path=/run/dbus/system_bus_socket";
    } else if (bus == "user") {
        const char* env = ::secure_getenv("DBUS_SESSION_BUS_ADDRESS");
        const char* runtime = ::secure_getenv("XDG_RUNTIME_DIR");
        if (env)
            address = env;
        else if (runtime)
            address = fmt::format("unix:path={}/bus", runtime);
        else
            return make_error(ErrorKind::unavailable, "no user bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set");
    }
    sd_bus* raw = nullptr;
    int r = api.sd_bus_new(&raw);
    if (r < 0)
        return make_error(ErrorKind::system, fmt::format("cannot create a bus connection: {}", std::strerror(-r)));
    BusPtr owner(raw, BusCloser{&api});
    r = api.sd_bus_set_address(raw, address.c_str());
    if (r >= 0)
        r = api.sd_bus_set_bus_client(raw, 1);
    // kanotify never passes file descriptors: not negotiating them saves a
    // round trip of the authentication on every connection.
    if (r >= 0)
        r = api.sd_bus_negotiate_fds(raw, 0);
    if (r >= 0)
        r = api.sd_bus_set_method_call_timeout(raw, timeout_usec);
    if (r >= 0) {
        // A bus reached through another process's root (a container's
        // systemd) is opened with CAP_SYS_PTRACE: the connect() in
        // sd_bus_start() resolves /proc/PID/root.
        std::optional<EffectiveCapability> raise;
        if (address.starts_with("unix:path=/proc/"))
            raise.emplace(std::initializer_list<unsigned>{CAP_SYS_PTRACE});
        r = api.sd_bus_start(raw);
    }
    if (r < 0)
        return make_error(ErrorKind::unavailable,
                          fmt::format("cannot connect to the {} bus ({}): {}", bus, address, std::strerror(-r)));
    // Authentication and Hello run under sd-bus's own 90 s limit, which no
    // setter changes: drive them here, within our timeout.
    auto now_usec = [] {
        timespec t{};
        clock_gettime(CLOCK_MONOTONIC, &t);
        return static_cast<std::uint64_t>(t.tv_sec) * 1000000 + static_cast<std::uint64_t>(t.tv_nsec) / 1000;
    };
    auto deadline = now_usec() + timeout_usec;
    while ((r = api.sd_bus_is_ready(raw)) == 0) {
        auto now = now_usec();
        if (now >= deadline)
            return make_error(ErrorKind::unavailable, fmt::format("the {} bus ({}) did not answer within {} ms", bus,
                                                                  address, timeout_usec / 1000));
        r = api.sd_bus_process(raw, nullptr);
        if (r < 0)
            break;
        if (r == 0)
            (void)api.sd_bus_wait(raw, deadline - now);
    }
    if (r < 0)
        return make_error(ErrorKind::unavailable,
                          fmt::format("cannot connect to the {} bus ({}): {}", bus, address, std::strerror(-r)));
    return owner;
}

std::string BusError::describe(int r) const {
    if (error.name)
        return fmt::format("{}: {}", error.name, error.message ? error.message : "");
    return std::strerror(-r);
}

Result<const SdBusApi*> sd_bus_api() {
    static SdBusApi api;
    static std::string failure;
    static std::once_flag once;
    std::call_once(once, [] {
        // RTLD_LOCAL: nothing else in the process binds to it by accident.
        void* library = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!library) {
            const char* why = ::dlerror();
            failure = fmt::format("cannot load libsystemd.so.0 for D-Bus: {}", why ? why : "unknown error");
            return;
        }
#define KANOTIFY_SD_BUS_RESOLVE(name)                                                                                  \
    api.name = reinterpret_cast<decltype(api.name)>(::dlsym(library, #name));                                          \
    if (!api.name) {                                                                                                   \
        failure = "libsystemd.so.0 has no " #name;                                                                     \
        return;                                                                                                        \
    }
        KANOTIFY_SD_BUS_FUNCTIONS(KANOTIFY_SD_BUS_RESOLVE)
#undef KANOTIFY_SD_BUS_RESOLVE
        api.vtable_format = static_cast<const unsigned*>(::dlsym(library, "sd_bus_object_vtable_format"));
        if (!api.vtable_format) {
            failure = "libsystemd.so.0 has no sd_bus_object_vtable_format";
            return;
        }
        // The library stays loaded for the life of the process, on purpose.
    });
    if (!failure.empty())
        return make_error(ErrorKind::unavailable, failure);
    return &api;
}

}  // namespace kanotify
