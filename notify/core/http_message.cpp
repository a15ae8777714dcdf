// SPDX-License-Identifier: GPL-2.0-or-later
#include "http_message.hpp"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "json_line.hpp"

namespace kanotify {

std::optional<std::string_view> neutron_state(State state, std::string_view names) noexcept {
    switch (state) {
    case State::master:
        return names == "legacy" ? "master" : "primary";
    case State::backup:
        return "backup";
    case State::fault:
        return "fault";
    default:
        return std::nullopt;
    }
}

std::string delivery_json(const Delivery& delivery) {
    const auto& e = delivery.event;
    nlohmann::ordered_json body;
    body["kind"] = to_string(e.kind);
    body["name"] = e.name;
    body["state"] = to_string(e.state);
    body["previous"] = delivery.previous ? nlohmann::ordered_json(to_string(*delivery.previous)) : nullptr;
    body["priority"] = e.priority ? nlohmann::ordered_json(*e.priority) : nullptr;
    body["sequence"] = e.sequence;
    body["time_usec"] = e.time_usec;
    body["source"] = to_string(e.source);
    if (!delivery.router_id.empty())
        body["router_id"] = delivery.router_id;
    return json_line(body);
}

Result<std::string> build_http_request(const Delivery& delivery) {
    auto body = delivery_json(delivery);
    std::string headers = "POST / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: kanotify\r\n"
                          "Content-Type: application/json\r\nConnection: close\r\n";
    if (!delivery.router_id.empty()) {
        auto state = neutron_state(delivery.event.state, delivery.neutron_state_names);
        if (!state)
            return make_error(ErrorKind::invalid, fmt::format("{} has no neutron state name",
                                                              to_string(delivery.event.state)));
        headers += fmt::format("X-Neutron-Router-Id: {}\r\nX-Neutron-State: {}\r\n", delivery.router_id, *state);
    }
    auto request = fmt::format("{}Content-Length: {}\r\n\r\n{}", headers, body.size(), body);
    if (request.size() > max_request_bytes)
        return make_error(ErrorKind::invalid, fmt::format("request of {} bytes is over the {}-byte limit",
                                                          request.size(), max_request_bytes));
    return request;
}

Result<HttpAnswer> parse_http_status(std::string_view received, bool closed) {
    HttpAnswer answer;
    auto end = received.find('\n');
    if (end == std::string_view::npos) {
        if (!closed) {
            // Not yet: but a peer that talks on and on without a line end
            // is not an HTTP server.
            if (received.size() > 1024)
                return make_error(ErrorKind::unavailable, "the answer's first line is over 1024 bytes");
            return answer;
        }
        if (received.empty())
            return make_error(ErrorKind::unavailable, "the peer closed the connection without answering");
        end = received.size();
    }
    auto line = received.substr(0, end);
    if (line.ends_with('\r'))
        line.remove_suffix(1);
    // "HTTP/1.1 200 OK": version, a space, three digits, optionally a reason.
    if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ')
        return make_error(ErrorKind::unavailable, fmt::format("not an HTTP status line: {}", quote(line)));
    auto digits = line.substr(9, 3);
    int status = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), status);
    if (ec != std::errc() || ptr != digits.data() + 3 || status < 100 || status > 599 ||
        (line.size() > 12 && line[12] != ' '))
        return make_error(ErrorKind::unavailable, fmt::format("not an HTTP status line: {}", quote(line)));
    answer.complete = true;
    answer.status = status;
    if (line.size() > 13)
        answer.reason = std::string(line.substr(13));
    return answer;
}

}  // namespace kanotify
