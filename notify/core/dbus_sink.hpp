// SPDX-License-Identifier: GPL-2.0-or-later
// The D-Bus sink (sd-bus, loaded on first use):
// - signal StateChanged(s name, s state, s previous, u priority,
//   t sequence, t time_usec, a{sv} details) on org.kanotify.Instance1 at
//   /org/kanotify/instance/<encoded name> (groups: /org/kanotify/group/...);
// - optionally the acknowledged call Transition (same arguments) on
//   org.kanotify.Agent1 at /org/kanotify/agent of a configured destination,
//   with a timeout and retries, so a consumer that starts late still gets it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "http_message.hpp"
#include "kanotify/config.hpp"
#include "sd_bus_api.hpp"
#include "unix_socket_sink.hpp"

namespace kanotify {

inline constexpr const char* dbus_instance_interface = "org.kanotify.Instance1";
inline constexpr const char* dbus_agent_interface = "org.kanotify.Agent1";
inline constexpr const char* dbus_agent_path = "/org/kanotify/agent";

// Extra facts sent in the a{sv} details.
struct DbusDetails {
    std::string netns;
    std::string interface;
    std::vector<std::string> addresses;
};

// True when `bus` is the system bus and its socket does not exist: nobody
// can be listening, and libsystemd need not even be loaded to know it.
[[nodiscard]] bool system_bus_absent(const std::string& bus);

class DbusConnections {
  public:
    using Sleep = std::function<void(std::chrono::milliseconds)>;
    explicit DbusConnections(Sleep sleep = {});

    [[nodiscard]] DeliveryReport emit_signal(const DbusSettings& settings, const Delivery& delivery,
                                             const DbusDetails& details);
    [[nodiscard]] DeliveryReport call_transition(const DbusSettings& settings, const Delivery& delivery,
                                                 const DbusDetails& details, bool single_attempt);

  private:
    [[nodiscard]] Result<sd_bus*> connect(const std::string& bus, std::int64_t timeout_ms);
    void drop(const std::string& bus);
    [[nodiscard]] Result<MessagePtr> build(sd_bus* bus, const SdBusApi& api, const Delivery& delivery,
                                           const DbusDetails& details, bool signal, const std::string& destination);

    Sleep sleep_;
    std::map<std::string, BusPtr> buses_;
};

}  // namespace kanotify
