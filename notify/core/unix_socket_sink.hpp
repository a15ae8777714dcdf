// SPDX-License-Identifier: GPL-2.0-or-later
// Delivers a transition over a Unix stream socket as one HTTP POST (the
// neutron L3 agent's protocol), retrying with backoff when the socket is
// missing or refuses, when its listen backlog is full, on a non-2xx answer
// and on timeouts. The listener's owner is checked with SO_PEERCRED before
// a byte is sent.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "http_message.hpp"
#include "kanotify/config.hpp"
#include "kanotify/error.hpp"

namespace kanotify {

struct AttemptResult {
    bool delivered = false;
    bool retryable = true;
    std::string error;  // why not delivered
    // The listener is there and its listen backlog is full: it is busy
    // answering others, not gone, and a slot frees within milliseconds.
    bool busy = false;
};

struct DeliveryReport {
    bool delivered = false;
    int attempts = 0;
    std::string error;  // the last attempt's reason when not delivered
};

class UnixSocketSink {
  public:
    using Sleep = std::function<void(std::chrono::milliseconds)>;
    explicit UnixSocketSink(SocketSettings settings, Sleep sleep = {});

    // One connection, one request, one answer.
    [[nodiscard]] AttemptResult attempt(const std::string& request) const;
    // attempt() with retries and backoff: 1 + settings.retries tries at most.
    [[nodiscard]] DeliveryReport deliver(const Delivery& delivery) const;

    [[nodiscard]] const SocketSettings& settings() const noexcept { return settings_; }

  private:
    SocketSettings settings_;
    Sleep sleep_;
};

}  // namespace kanotify
