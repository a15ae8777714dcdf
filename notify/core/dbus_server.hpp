// SPDX-License-Identifier: GPL-2.0-or-later
// The resident FIFO reader's own D-Bus service: it owns a configured bus
// name and serves, per instance and sync group, the read-only properties
// State (s), Priority (u) and LastChange (t, CLOCK_REALTIME microseconds) of
// org.kanotify.Instance1, with PropertiesChanged on every transition and
// org.freedesktop.DBus.ObjectManager at /org/kanotify. keepalived's own
// interface has no PropertiesChanged, no ObjectManager and nothing for
// sync groups; and this runs in kanotify, not in the VRRP process.
//
// sd-bus objects belong to one thread: the bus thread owns the connection
// and the table of instances; the dispatcher hands it updates through a
// queue and an eventfd.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kanotify/error.hpp"
#include "kanotify/event.hpp"
#include "unique_fd.hpp"

namespace kanotify {

struct InstanceProperties {
    Kind kind = Kind::instance;
    std::string name;
    std::string state;  // keepalived's spelling; "" before any is known
    std::uint32_t priority = 0;
    std::uint64_t last_change_usec = 0;
};

class DbusServer {
  public:
    // Connects to `bus` ("system", "user" or an address), owns `name` and
    // starts serving `initial` on its own thread.
    [[nodiscard]] static Result<std::unique_ptr<DbusServer>> start(const std::string& bus, const std::string& name,
                                                                   std::vector<InstanceProperties> initial);
    ~DbusServer();
    DbusServer(const DbusServer&) = delete;
    DbusServer& operator=(const DbusServer&) = delete;

    // Queues updates, applied and announced in order on the bus thread.
    void update(std::vector<InstanceProperties> updates);

    struct State;  // the bus thread's, see dbus_server.cpp

  private:
    DbusServer() = default;
    void run();

    std::unique_ptr<State> state_;
    UniqueFd wake_;
    std::mutex mutex_;
    std::vector<InstanceProperties> queued_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace kanotify
