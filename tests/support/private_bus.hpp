// SPDX-License-Identifier: GPL-2.0-or-later
// A private dbus-daemon for one test, with its own configuration (anyone
// may own names, send, receive and monitor), and an sd-bus client of it.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "process.hpp"

namespace kanotify::test {

class PrivateBus {
  public:
    explicit PrivateBus(const TempDir& tmp) : socket_(tmp.str("bus")) {
        auto config = tmp.str("bus.conf");
        write_file(config, "<busconfig>\n  <type>session</type>\n  <listen>unix:path=" + socket_ +
                               "</listen>\n  <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n"
                               "    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
                               "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                               "    <allow eavesdrop=\"true\"/>\n  </policy>\n</busconfig>\n");
        pid_ = spawn({"/usr/bin/dbus-daemon", "--config-file=" + config, "--nofork", "--nopidfile"},
                     tmp.str("bus.out"), tmp.str("bus.err"));
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (::access(socket_.c_str(), F_OK) != 0) {
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("dbus-daemon did not start");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;
    ~PrivateBus() {
        ::kill(pid_, SIGTERM);
        (void)wait_status(pid_);
    }
    [[nodiscard]] std::string address() const { return "unix:path=" + socket_; }

    // A new client connection; the caller owns it.
    [[nodiscard]] sd_bus* connect() const {
        sd_bus* bus = nullptr;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address().c_str()) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0)
            throw std::runtime_error("cannot connect to the private bus");
        return bus;
    }

  private:
    std::string socket_;
    pid_t pid_ = -1;
};

// Runs sd_bus_process/sd_bus_wait until `done()` or the timeout.
template <typename Done>
bool pump(sd_bus* bus, Done done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        int r = sd_bus_process(bus, nullptr);
        if (r < 0)
            return false;
        if (r == 0)
            sd_bus_wait(bus, 50000);
    }
    return true;
}

}  // namespace kanotify::test
