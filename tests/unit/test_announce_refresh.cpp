// SPDX-License-Identifier: GPL-2.0-or-later
// The refresh schedule of [garp] refresh_s, with the real announcer: the
// instances here have no interface configured, so every session fails at
// once, without a socket or a namespace, and says so in its journal line.
// Time is passed in, never waited for.
#include <catch2/catch.hpp>

#include <map>

#include <nlohmann/json.hpp>

#include "announce_refresh.hpp"

using namespace kanotify;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

Config refresh_config() {
    auto config = parse_config(R"(state_dir = "/nonexistent"
[garp]
count = 2
interval_ms = 100
refresh_s = 10
[instance.VI_1]
[instance.VI_2]
[instance.VI_OFF]
[instance.VI_OFF.garp]
refresh_s = 0
)",
                               "refresh.toml");
    REQUIRE(config);
    return *config;
}

}  // namespace

TEST_CASE("announce refresh: a MASTER starts the period and each period end announces once", "[refresh]") {
    auto config = refresh_config();
    AnnounceRefresher refresher(config, {});
    auto t0 = AnnounceClock::now();
    CHECK_FALSE(refresher.next_wake());
    refresher.recorded("VI_1", State::master, t0);
    REQUIRE(refresher.next_wake() == t0 + 10s);
    // Nothing before the period ends.
    CHECK(refresher.run_due(t0 + 9s).empty());
    auto lines = refresher.run_due(t0 + 10s);
    REQUIRE(lines.size() == 1);
    auto line = json::parse(lines[0]);
    CHECK(line["type"] == "announce");
    CHECK(line["name"] == "VI_1");
    CHECK(line["state"] == "MASTER");
    CHECK(line["reason"] == "refresh");
    CHECK(line["round"] == 1);
    CHECK(line["outcome"] == "failed");
    CHECK(line["error"] == "no interface is configured for the instance");
    // The next period counts from this refresh, even when it ran late.
    CHECK(refresher.next_wake() == t0 + 20s);
    lines = refresher.run_due(t0 + 25s);
    REQUIRE(lines.size() == 1);
    CHECK(json::parse(lines[0])["round"] == 2);
    CHECK(refresher.next_wake() == t0 + 35s);
}

TEST_CASE("announce refresh: BACKUP cancels it and a new MASTER restarts the period", "[refresh]") {
    auto config = refresh_config();
    AnnounceRefresher refresher(config, {});
    auto t0 = AnnounceClock::now();
    refresher.recorded("VI_1", State::master, t0);
    refresher.recorded("VI_2", State::master, t0 + 1s);
    CHECK(refresher.scheduled() == std::vector<std::string>{"VI_1", "VI_2"});
    refresher.recorded("VI_1", State::backup, t0 + 2s);
    CHECK(refresher.scheduled() == std::vector<std::string>{"VI_2"});
    CHECK(refresher.next_wake() == t0 + 11s);
    auto lines = refresher.run_due(t0 + 12s);
    REQUIRE(lines.size() == 1);
    CHECK(json::parse(lines[0])["name"] == "VI_2");
    // FAULT and STOP cancel too; MASTER again counts from its own time.
    refresher.recorded("VI_2", State::fault, t0 + 13s);
    CHECK_FALSE(refresher.next_wake());
    refresher.recorded("VI_2", State::master, t0 + 14s);
    CHECK(refresher.next_wake() == t0 + 24s);
    refresher.recorded("VI_2", State::master, t0 + 16s);
    CHECK(refresher.next_wake() == t0 + 26s);
    refresher.recorded("VI_2", State::stop, t0 + 17s);
    CHECK_FALSE(refresher.next_wake());
    CHECK(refresher.run_due(t0 + 100s).empty());
}

TEST_CASE("announce refresh: refresh_s = 0 or no [garp] table refreshes nothing", "[refresh]") {
    auto config = refresh_config();
    AnnounceRefresher refresher(config, {});
    refresher.recorded("VI_OFF", State::master, AnnounceClock::now());
    CHECK_FALSE(refresher.next_wake());
    auto plain = parse_config("state_dir = \"/nonexistent\"\n[instance.VI_1]\n", "plain.toml");
    REQUIRE(plain);
    AnnounceRefresher none(*plain, {});
    none.recorded("VI_1", State::master, AnnounceClock::now());
    CHECK_FALSE(none.next_wake());
}

TEST_CASE("announce refresh: an instance no longer MASTER on disk is not announced", "[refresh]") {
    auto config = refresh_config();
    std::map<std::string, State> disk{{"VI_1", State::master}, {"VI_2", State::master}};
    AnnounceRefresher refresher(config, [&](const std::string& name) -> std::optional<State> {
        return disk.at(name);
    });
    auto t0 = AnnounceClock::now();
    refresher.recorded("VI_1", State::master, t0);
    refresher.recorded("VI_2", State::master, t0);
    // Another front-end recorded BACKUP for VI_1 meanwhile.
    disk["VI_1"] = State::backup;
    auto lines = refresher.run_due(t0 + 10s);
    REQUIRE(lines.size() == 1);
    CHECK(json::parse(lines[0])["name"] == "VI_2");
    CHECK(refresher.scheduled() == std::vector<std::string>{"VI_2"});
}
