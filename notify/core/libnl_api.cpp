// SPDX-License-Identifier: GPL-2.0-or-later
#include "libnl_api.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include <fmt/format.h>

namespace kanotify {

namespace {

// Debian 12's SONAMEs (libnl-3-200, libnl-route-3-200). libnl-route needs
// libnl-3's symbols: libnl-3 is opened first and libnl-route's own
// dependency on it resolves to the same, already loaded, object.
constexpr const char* core_soname = "libnl-3.so.200";
constexpr const char* route_soname = "libnl-route-3.so.200";

void* open_library(const char* soname, std::string& failure) {
    // RTLD_LOCAL: nothing else in the process binds to it by accident.
    // RTLD_LAZY: every function kanotify calls is looked up with dlsym()
    // below (a missing one fails the load), and binding the libraries'
    // own hundreds of internal calls up front cost some 40 us on the way
    // to the first gratuitous ARP. libnl-route-3-200 depends on the exact
    // libnl-3-200 version, so a lazy binding cannot find a symbol missing.
    void* library = ::dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
    if (!library) {
        const char* why = ::dlerror();
        failure = fmt::format("cannot load {} for netlink: {}", soname, why ? why : "unknown error");
    }
    return library;
}

}  // namespace

Result<const LibnlApi*> libnl_api() {
    static LibnlApi api;
    static std::string failure;
    static std::once_flag once;
    std::call_once(once, [] {
        void* core = open_library(core_soname, failure);
        if (!core)
            return;
        void* route = open_library(route_soname, failure);
        if (!route)
            return;
#define KANOTIFY_LIBNL_RESOLVE_IN(library, soname, name)                                                               \
    api.name = reinterpret_cast<decltype(api.name)>(::dlsym(library, #name));                                          \
    if (!api.name) {                                                                                                   \
        failure = fmt::format("{} has no {}", soname, #name);                                                          \
        return;                                                                                                        \
    }
#define KANOTIFY_LIBNL_RESOLVE_CORE(name) KANOTIFY_LIBNL_RESOLVE_IN(core, core_soname, name)
#define KANOTIFY_LIBNL_RESOLVE_ROUTE(name) KANOTIFY_LIBNL_RESOLVE_IN(route, route_soname, name)
        KANOTIFY_LIBNL_CORE_FUNCTIONS(KANOTIFY_LIBNL_RESOLVE_CORE)
        KANOTIFY_LIBNL_ROUTE_FUNCTIONS(KANOTIFY_LIBNL_RESOLVE_ROUTE)
#undef KANOTIFY_LIBNL_RESOLVE_ROUTE
#undef KANOTIFY_LIBNL_RESOLVE_CORE
#undef KANOTIFY_LIBNL_RESOLVE_IN
        // Both libraries stay loaded for the life of the process, on purpose:
        // objects handed out (caches, links) point into them.
    });
    if (!failure.empty())
        return make_error(ErrorKind::unavailable, failure);
    return &api;
}

tl::unexpected<Error> libnl_error(const LibnlApi& api, const char* context, int nle) {
    int code = nle < 0 ? -nle : nle;
    return make_error(ErrorKind::system, fmt::format("{}: {}", context, api.nl_geterror(code)));
}

}  // namespace kanotify
