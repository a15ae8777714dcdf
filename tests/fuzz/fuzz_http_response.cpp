// SPDX-License-Identifier: GPL-2.0-or-later
// Fuzzes what comes back from peers and from disk on the delivery path: the
// status line of a socket listener's HTTP answer (read incrementally, then
// at close) and a pending delivery's JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http_message.hpp"
#include "kanotify/event.hpp"
#include "pending.hpp"

using namespace kanotify;

namespace {

constexpr std::size_t max_input = 8 * 1024;
constexpr std::size_t max_first_line = 1024;  // parse_http_status's patience without a newline

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

bool same_answer(const HttpAnswer& a, const HttpAnswer& b) {
    return a.complete == b.complete && a.status == b.status && a.reason == b.reason;
}

void check_answer(const Result<HttpAnswer>& answer) {
    if (!answer) {
        check(answer.error().kind == ErrorKind::unavailable);
        check(!answer.error().message.empty());
        return;
    }
    if (answer->complete) {
        check(answer->status >= 100 && answer->status <= 599);
        check(answer->reason.find('\n') == std::string::npos);
    } else {
        check(answer->status == 0 && answer->reason.empty());
    }
}

void http_status(std::string_view received) {
    auto open = parse_http_status(received, false);
    auto closed = parse_http_status(received, true);
    check_answer(open);
    check_answer(closed);
    auto nl = received.find('\n');
    // Once the peer closed there is nothing left to wait for.
    check(!closed || closed->complete);
    if (open && !open->complete) {
        check(nl == std::string_view::npos && received.size() <= max_first_line);
    }
    if (nl == std::string_view::npos) {
        // Still waiting for more: every shorter read was too.
        if (open && !open->complete && !received.empty())
            check(parse_http_status(received.substr(0, received.size() / 2), false).has_value());
        return;
    }
    // With a whole line, what follows it and whether the peer closed do not matter.
    check(open.has_value() == closed.has_value());
    if (open) {
        check(open->complete && same_answer(*open, *closed));
        auto line_only = parse_http_status(received.substr(0, nl + 1), false);
        check(line_only.has_value() && same_answer(*line_only, *open));
        // A peer that closes right after the line, without its newline, said the same.
        auto cut = parse_http_status(received.substr(0, nl), true);
        check(cut.has_value() && same_answer(*cut, *open));
    }
}

bool same_delivery(const Delivery& a, const Delivery& b) {
    return a.event.kind == b.event.kind && a.event.name == b.event.name && a.event.state == b.event.state &&
           a.event.priority == b.event.priority && a.event.sequence == b.event.sequence &&
           a.event.time_usec == b.event.time_usec && a.event.source == b.event.source &&
           a.previous == b.previous && a.router_id == b.router_id;
}

void pending_json(std::string_view text) {
    auto delivery = parse_delivery_json(text);
    if (!delivery) {
        check(!delivery.error().message.empty());
        return;
    }
    check(validate_name(delivery->event.name).has_value());
    check(delivery->router_id.empty() || validate_name(delivery->router_id).has_value());
    // What is written back for the next attempt reads back the same.
    auto json = delivery_json(*delivery);
    auto again = parse_delivery_json(json);
    check(again.has_value() && same_delivery(*again, *delivery));
    // And either fits one request or is refused, never a truncated request.
    auto request = build_http_request(*delivery);
    if (request) {
        check(request->size() <= max_request_bytes);
        check(request->starts_with("POST / HTTP/1.1\r\n"));
        check(request->ends_with(json));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    http_status(input);
    pending_json(input);
    return 0;
}
