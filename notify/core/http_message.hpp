// SPDX-License-Identifier: GPL-2.0-or-later
// The Unix-socket sink's wire format: one HTTP/1.1 POST, built whole so it
// goes out in a single write() under 4096 bytes (the neutron L3 agent reads
// one recv(4096)), and a lenient reader of the status line of the answer.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kanotify/error.hpp"
#include "kanotify/event.hpp"

namespace kanotify {

inline constexpr std::size_t max_request_bytes = 4095;

struct Delivery {
    Event event;
    std::optional<State> previous;
    std::string router_id;               // neutron's, when known: adds its headers
    std::string neutron_state_names = "current";  // current: primary; legacy: master
};

// neutron's name for a state, if it has one (primary/master, backup, fault).
[[nodiscard]] std::optional<std::string_view> neutron_state(State state, std::string_view names) noexcept;

// The event as the JSON body every consumer gets.
[[nodiscard]] std::string delivery_json(const Delivery& delivery);

[[nodiscard]] Result<std::string> build_http_request(const Delivery& delivery);

// What a peer answered so far. `complete` once a whole status line was seen
// (ended by CRLF, a bare LF, or the peer closing after it).
struct HttpAnswer {
    bool complete = false;
    int status = 0;
    std::string reason;
};
// `closed`: the peer closed after sending `received`.
[[nodiscard]] Result<HttpAnswer> parse_http_status(std::string_view received, bool closed);

}  // namespace kanotify
