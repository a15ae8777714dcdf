// SPDX-License-Identifier: GPL-2.0-or-later
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "kanotify/dispatch.hpp"
#include "metrics.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;

TEST_CASE("metrics: the textfile follows transitions, counters survive processes", "[metrics]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.metrics_textfile = tmp.str("kanotify.prom");
    config.defaults.dbus.signal = false;
    for (auto state : {State::backup, State::master, State::master_rx_lower_pri}) {
        // A new dispatcher each time, as each argv invocation is a new process.
        auto dispatcher = Dispatcher::open(config);
        REQUIRE(dispatcher);
        Event e;
        e.name = "VI_1";
        e.state = state;
        e.time_usec = 1700000000123456;
        REQUIRE(dispatcher->handle(std::span<const Event>(&e, 1)));
        REQUIRE(dispatcher->write_metrics());
    }
    auto store = StateStore::open(config.state_dir);
    REQUIRE(store);
    REQUIRE(count_delivery_failure(*store, "socket"));
    REQUIRE(count_delivery_failure(*store, "socket"));
    auto dispatcher = Dispatcher::open(config);
    REQUIRE(dispatcher->write_metrics());
    auto text = read_file(tmp.path() / "kanotify.prom");
    CHECK_THAT(text, Catch::Contains("kanotify_instance_state{kind=\"instance\",name=\"VI_1\",state=\"MASTER\"} 1\n"));
    CHECK_THAT(text, Catch::Contains("kanotify_transitions_total{kind=\"instance\",name=\"VI_1\"} 3\n"));
    CHECK_THAT(text, Catch::Contains(
                         "kanotify_last_transition_timestamp_seconds{kind=\"instance\",name=\"VI_1\"} 1700000000.123456\n"));
    CHECK_THAT(text, Catch::Contains("kanotify_delivery_failures_total{sink=\"socket\"} 2\n"));
    CHECK_THAT(text, Catch::Contains("kanotify_pending_deliveries{sink=\"socket\"} 0\n"));
    CHECK_THAT(text, Catch::Contains("# TYPE kanotify_transitions_total counter\n"));
    // Nothing but the textfile is left beside it.
    std::size_t entries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(tmp.path())) {
        (void)entry;
        ++entries;
    }
    CHECK(entries == 2);  // state/ and kanotify.prom
}

TEST_CASE("metrics: a textfile path must be absolute and its directory must exist", "[metrics]") {
    CHECK_FALSE(write_textfile("relative.prom", "x"));
    CHECK_FALSE(write_textfile("/nonexistent-dir-for-kanotify/x.prom", "x"));
    CHECK_FALSE(parse_config("[metrics]\ntextfile = \"x.prom\"\n", "t"));
}

TEST_CASE("metrics: a hard link or a symlink planted at a counter is refused, its target untouched",
          "[metrics][security]") {
    kanotify::test::TempDir tmp;
    auto store = kanotify::StateStore::open(tmp.str("state"));
    REQUIRE(store);
    REQUIRE(kanotify::increment_counter(*store, "failures:socket"));
    kanotify::test::write_file(tmp.path() / "victim", "precious\n");
    std::filesystem::create_hard_link(tmp.path() / "victim", tmp.path() / "state/.locks/failures:dbus");
    auto linked = kanotify::increment_counter(*store, "failures:dbus");
    REQUIRE_FALSE(linked);
    CHECK_THAT(linked.error().message, Catch::Contains("links"));
    std::filesystem::create_symlink(tmp.path() / "victim", tmp.path() / "state/.locks/failures:hooks");
    CHECK_FALSE(kanotify::increment_counter(*store, "failures:hooks"));
    CHECK(kanotify::test::read_file(tmp.path() / "victim") == "precious\n");
    // The counter counted before is intact and still counts.
    REQUIRE(kanotify::increment_counter(*store, "failures:socket"));
    CHECK(kanotify::test::read_file(tmp.path() / "state/.locks/failures:socket") ==
          std::string(19, ' ') + "2\n");
}

TEST_CASE("metrics: a symlink, a hard link or a FIFO planted at the textfile is replaced, its target untouched",
          "[metrics][security]") {
    // node_exporter's textfile directory belongs to its own user, who can
    // plant anything there.
    namespace fs = std::filesystem;
    kanotify::test::TempDir tmp;
    fs::create_directory(tmp.path() / "textfile");
    auto path = tmp.str("textfile/kanotify.prom");
    kanotify::test::write_file(tmp.path() / "victim", "root:precious\n");
    for (int kind = 0; kind < 3; ++kind) {
        INFO("planted: " << (kind == 0 ? "symlink" : kind == 1 ? "hard link" : "FIFO"));
        if (kind == 0)
            fs::create_symlink(tmp.path() / "victim", path);
        else if (kind == 1)
            fs::create_hard_link(tmp.path() / "victim", path);
        else
            REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        REQUIRE(kanotify::write_textfile(path, "kanotify_up 1\n"));
        CHECK(fs::is_regular_file(fs::symlink_status(path)));
        CHECK(kanotify::test::read_file(path) == "kanotify_up 1\n");
        CHECK(kanotify::test::read_file(tmp.path() / "victim") == "root:precious\n");
        CHECK(fs::hard_link_count(tmp.path() / "victim") == 1);
        fs::remove(path);
    }
    CHECK(fs::is_empty(tmp.path() / "textfile"));  // no temporary left behind
}
