// SPDX-License-Identifier: GPL-2.0-or-later
#include "sd_bus_api.hpp"

#include <dlfcn.h>

#include <mutex>

#include <fmt/format.h>

namespace kanotify {

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
