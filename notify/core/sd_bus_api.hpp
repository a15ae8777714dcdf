// SPDX-License-Identifier: GPL-2.0-or-later
// sd-bus, loaded when a D-Bus action is configured and not before.
//
// libsystemd and the libraries it needs cost the argv front-end (a fresh
// process per transition) more CPU than recording the transition does, and
// kanotify's neutron monitor must not carry a D-Bus library at all. So the
// binary does not link libsystemd: this table is filled with dlopen() and
// dlsym() the first time a D-Bus sink is used. The types and prototypes
// still come from <systemd/sd-bus.h>, so every call is checked at compile
// time against the real API.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <memory>
#include <string>

#include "kanotify/error.hpp"

namespace kanotify {

struct SdBusApi {
#define KANOTIFY_SD_BUS_FUNCTIONS(X)                                                                                   \
    X(sd_bus_new)                                                                                                      \
    X(sd_bus_set_address)                                                                                              \
    X(sd_bus_set_bus_client)                                                                                           \
    X(sd_bus_negotiate_fds)                                                                                            \
    X(sd_bus_start)                                                                                                    \
    X(sd_bus_flush_close_unref)                                                                                        \
    X(sd_bus_send)                                                                                                     \
    X(sd_bus_call)                                                                                                     \
    X(sd_bus_flush)                                                                                                    \
    X(sd_bus_message_new_signal)                                                                                       \
    X(sd_bus_message_new_method_call)                                                                                  \
    X(sd_bus_message_unref)                                                                                            \
    X(sd_bus_message_set_auto_start)                                                                                   \
    X(sd_bus_message_append)                                                                                           \
    X(sd_bus_message_append_strv)                                                                                      \
    X(sd_bus_message_read)                                                                                             \
    X(sd_bus_match_signal)                                                                                             \
    X(sd_bus_slot_unref)                                                                                               \
    X(sd_bus_message_open_container)                                                                                   \
    X(sd_bus_message_close_container)                                                                                  \
    X(sd_bus_error_free)                                                                                               \
    X(sd_bus_error_has_name)                                                                                           \
    X(sd_bus_path_encode)                                                                                              \
    X(sd_bus_path_decode)                                                                                              \
    X(sd_bus_request_name)                                                                                             \
    X(sd_bus_add_fallback_vtable)                                                                                      \
    X(sd_bus_add_node_enumerator)                                                                                      \
    X(sd_bus_add_object_manager)                                                                                       \
    X(sd_bus_emit_properties_changed_strv)                                                                             \
    X(sd_bus_emit_object_added)                                                                                        \
    X(sd_bus_process)                                                                                                  \
    X(sd_bus_get_fd)                                                                                                   \
    X(sd_bus_get_events)                                                                                               \
    X(sd_bus_get_timeout)                                                                                              \
    X(sd_bus_set_method_call_timeout)                                                                                  \
    X(sd_bus_is_ready)                                                                                                 \
    X(sd_bus_close_unref)                                                                                              \
    X(sd_bus_wait)

#define KANOTIFY_SD_BUS_POINTER(name) decltype(&::name) name = nullptr;
    KANOTIFY_SD_BUS_FUNCTIONS(KANOTIFY_SD_BUS_POINTER)
#undef KANOTIFY_SD_BUS_POINTER

    // SD_BUS_VTABLE_START() takes the address of this libsystemd variable,
    // which sd-bus compares to tell vtable layouts apart: an object vtable
    // is built at run time with the loaded library's address (see
    // dbus_server.cpp), since the binary cannot link to it.
    const unsigned* vtable_format = nullptr;
};

// The process-wide table, loaded on first use; an error when libsystemd
// (libsystemd0) is not installed or lacks a function.
[[nodiscard]] Result<const SdBusApi*> sd_bus_api();

// Owners for sd-bus handles, releasing through the loaded table.
struct BusCloser {
    const SdBusApi* api;
    // Flushing waits for the bus with no bound of ours: only a connection
    // that finished connecting is flushed.
    void operator()(sd_bus* bus) const noexcept {
        if (api->sd_bus_is_ready(bus) > 0)
            api->sd_bus_flush_close_unref(bus);
        else
            api->sd_bus_close_unref(bus);
    }
};
struct MessageCloser {
    const SdBusApi* api;
    void operator()(sd_bus_message* m) const noexcept { api->sd_bus_message_unref(m); }
};
using BusPtr = std::unique_ptr<sd_bus, BusCloser>;
// sd_bus_error with its release bound to the loaded table.
struct BusError {
    const SdBusApi& api;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    explicit BusError(const SdBusApi& a) : api(a) {}
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { api.sd_bus_error_free(&error); }
    // The D-Bus error's name and message, else what the return value says.
    [[nodiscard]] std::string describe(int r) const;
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageCloser>;

// A client connection to "system", "user" or an address, whose every wait
// (the Hello reply included) is bounded by `timeout`: sd-bus's default is
// 25 s, far too long for a notify process keepalived may kill after one.
[[nodiscard]] Result<BusPtr> open_bus(const SdBusApi& api, const std::string& bus, std::uint64_t timeout_usec);

}  // namespace kanotify
