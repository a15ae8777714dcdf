// SPDX-License-Identifier: GPL-2.0-or-later
#include <catch2/catch.hpp>

#include "http_message.hpp"
#include "pending.hpp"

using namespace kanotify;

namespace {

Delivery sample(State state, std::string router_id = {}) {
    Delivery d;
    d.event.name = "VI_1";
    d.event.state = state;
    d.event.priority = 100;
    d.event.sequence = 7;
    d.event.time_usec = 1700000000000000;
    d.previous = State::backup;
    d.router_id = std::move(router_id);
    return d;
}

}  // namespace

TEST_CASE("http: the request carries neutron's headers only with a router id", "[http]") {
    auto plain = build_http_request(sample(State::master));
    REQUIRE(plain);
    CHECK(plain->starts_with("POST / HTTP/1.1\r\n"));
    CHECK(plain->find("X-Neutron") == std::string::npos);
    CHECK(plain->find("\r\n\r\n{\"kind\":\"INSTANCE\",\"name\":\"VI_1\",\"state\":\"MASTER\",\"previous\":\"BACKUP\"") !=
          std::string::npos);
    auto neutron = build_http_request(sample(State::master, "8d1b7e5c-0a3c-4c1e-9a43-6f2b0e6a1c11"));
    REQUIRE(neutron);
    CHECK(neutron->find("X-Neutron-Router-Id: 8d1b7e5c-0a3c-4c1e-9a43-6f2b0e6a1c11\r\n") != std::string::npos);
    CHECK(neutron->find("X-Neutron-State: primary\r\n") != std::string::npos);
    auto legacy = sample(State::master, "r1");
    legacy.neutron_state_names = "legacy";
    CHECK(build_http_request(legacy)->find("X-Neutron-State: master\r\n") != std::string::npos);
    CHECK_FALSE(build_http_request(sample(State::stop, "r1")));  // neutron has no STOP
    auto body_at = neutron->find("\r\n\r\n") + 4;
    CHECK(neutron->find("Content-Length: " + std::to_string(neutron->size() - body_at) + "\r\n") != std::string::npos);
    CHECK(neutron->size() < 4096);
}

TEST_CASE("http: status lines are read leniently", "[http]") {
    struct Case {
        std::string received;
        bool closed;
        bool complete;
        int status;
    };
    for (const auto& c : std::vector<Case>{
             {"HTTP/1.1 200 OK\r\n\r\n", false, true, 200},
             {"HTTP/1.1 200 OK\n", false, true, 200},        // LF only, no blank line
             {"HTTP/1.1 200 OK", true, true, 200},           // closed right after the status line
             {"HTTP/1.0 204 No Content\r\n", false, true, 204},
             {"HTTP/1.1 500 Internal Server Error\r\n", false, true, 500},
             {"HTTP/1.1 200", true, true, 200},              // no reason phrase
             {"HTTP/1.1 20", false, false, 0},               // not yet
             {"", false, false, 0},
         }) {
        INFO(c.received);
        auto answer = parse_http_status(c.received, c.closed);
        REQUIRE(answer);
        CHECK(answer->complete == c.complete);
        CHECK(answer->status == c.status);
    }
    for (const auto& bad : std::vector<std::string>{"SSH-2.0-OpenSSH\r\n", "HTTP/1.1 2000 OK\n", "HTTP/1.1 abc OK\n",
                                                    "HTTP/2 200\n", "HTTP/1.1 099 Low\n"}) {
        INFO(bad);
        CHECK_FALSE(parse_http_status(bad, false));
    }
    CHECK_FALSE(parse_http_status("", true));                      // closed without a word
    CHECK_FALSE(parse_http_status(std::string(2000, 'x'), false));  // no line end in sight
}

TEST_CASE("pending: a delivery survives its JSON round trip, bad entries are refused", "[http][pending]") {
    auto d = sample(State::fault, "r1");
    auto back = parse_delivery_json(delivery_json(d));
    REQUIRE(back);
    CHECK(back->event.name == "VI_1");
    CHECK(back->event.state == State::fault);
    CHECK(back->previous == State::backup);
    CHECK(back->event.priority == std::optional<std::uint8_t>(100));
    CHECK(back->event.sequence == 7);
    CHECK(back->router_id == "r1");
    CHECK_FALSE(parse_delivery_json("not json"));
    CHECK_FALSE(parse_delivery_json(R"({"kind":"INSTANCE","name":"../x","state":"MASTER"})"));
    CHECK_FALSE(parse_delivery_json(R"({"kind":"INSTANCE","name":"x","state":"PRIMARY"})"));
    CHECK_FALSE(parse_delivery_json(R"({"kind":"INSTANCE","name":"x","state":"MASTER","router_id":"a\r\nb"})"));
}
