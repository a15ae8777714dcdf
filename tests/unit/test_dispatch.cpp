// SPDX-License-Identifier: GPL-2.0-or-later
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "journal.hpp"
#include "kanotify/dispatch.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;

namespace {

Event make(const std::string& name, State state, std::uint64_t sequence, Kind kind = Kind::instance) {
    Event e;
    e.kind = kind;
    e.name = name;
    e.state = state;
    e.priority = 100;
    e.sequence = sequence;
    e.time_usec = realtime_usec();
    e.source = Source::fifo;
    return e;
}

std::vector<nlohmann::json> journal_of(const Config& config) {
    auto store = StateStore::open(config.state_dir);
    REQUIRE(store);
    Journal journal(*store, config.journal);
    auto lines = journal.tail(0);
    REQUIRE(lines);
    std::vector<nlohmann::json> out;
    for (const auto& line : lines->lines)
        out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace

TEST_CASE("dispatch: a batch is applied in order and journalled with outcomes", "[dispatch]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.defaults.dbus.signal = false;  // no signal on whatever system bus the machine has
    auto dispatcher = Dispatcher::open(config);
    REQUIRE(dispatcher);
    std::vector<Event> batch{make("VI_1", State::backup, 10), make("VI_2", State::backup, 11),
                             make("VI_1", State::master, 12), make("VI_1", State::master_rx_lower_pri, 13),
                             make("G1", State::master, 14, Kind::group)};
    auto outcomes = dispatcher->handle(batch);
    REQUIRE(outcomes);
    REQUIRE(outcomes->size() == 5);
    CHECK((*outcomes)[0].status == Status::applied);
    CHECK_FALSE((*outcomes)[0].written);  // superseded within the batch
    CHECK((*outcomes)[2].status == Status::applied);
    CHECK((*outcomes)[2].written);
    CHECK((*outcomes)[2].previous == State::backup);
    CHECK((*outcomes)[3].status == Status::recorded);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    CHECK(read_file(tmp.path() / "state/VI_2.state") == "BACKUP\n");
    CHECK(read_file(tmp.path() / "state/group/G1.state") == "MASTER\n");

    auto journal = journal_of(config);
    REQUIRE(journal.size() == 5);
    CHECK(journal[0]["name"] == "VI_1");
    CHECK(journal[0]["state"] == "BACKUP");
    CHECK(journal[0]["previous"].is_null());
    CHECK(journal[2]["previous"] == "BACKUP");
    CHECK(journal[2]["actions"]["state_file"] == "written");
    CHECK(journal[3]["state"] == "MASTER_RX_LOWER_PRI");
    CHECK(journal[3]["outcome"] == "recorded");
    CHECK(journal[4]["kind"] == "GROUP");
    for (const auto& entry : journal) {
        CHECK(entry["type"] == "transition");
        CHECK(entry.contains("time_usec"));
        CHECK(entry.contains("sequence"));
        CHECK(entry["source"] == "fifo");
        CHECK(entry["priority"] == 100);
    }
}

TEST_CASE("dispatch: an older sequence is journalled as stale and not applied", "[dispatch]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.defaults.dbus.signal = false;  // no signal on whatever system bus the machine has
    auto dispatcher = Dispatcher::open(config);
    REQUIRE(dispatcher);
    auto newer = make("VI_1", State::master, 20);
    REQUIRE(dispatcher->handle(std::span<const Event>(&newer, 1)));
    auto older = make("VI_1", State::backup, 19);
    auto outcomes = dispatcher->handle(std::span<const Event>(&older, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::stale);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    // Unknown order (argv without a stamp) is applied as it comes.
    auto unordered = make("VI_1", State::fault, 0);
    outcomes = dispatcher->handle(std::span<const Event>(&unordered, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::applied);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "FAULT\n");
    CHECK(dispatcher->highest_sequence().value() == 20);
    auto journal = journal_of(config);
    REQUIRE(journal.size() == 3);
    CHECK(journal[1]["outcome"] == "stale");
    CHECK(journal[1]["actions"]["state_file"] == "skipped");
}

TEST_CASE("dispatch: an argv STOP received before a recorded transition is stale", "[dispatch]") {
    // keepalived stopped (its STOP handled late, outside its process group),
    // restarted, and reported BACKUP before the STOP got its turn.
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.defaults.dbus.signal = false;  // no signal on whatever system bus the machine has
    auto dispatcher = Dispatcher::open(config);
    REQUIRE(dispatcher);
    auto argv = [](State state, std::int64_t boottime) {
        auto e = make("VI_1", state, 0);
        e.source = Source::argv;
        e.boottime_usec = boottime;
        return e;
    };
    auto now = boottime_usec();
    auto late_stop = argv(State::stop, now - 2000);
    auto restarted = argv(State::backup, now - 1000);
    REQUIRE(dispatcher->handle(std::span<const Event>(&restarted, 1)));
    auto outcomes = dispatcher->handle(std::span<const Event>(&late_stop, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::stale);
    CHECK(outcomes->front().reason.find("after this STOP") != std::string::npos);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");

    // A STOP received after what was recorded is applied; so is one whose
    // record was stamped on another boot (the clock restarted from zero).
    auto stop = argv(State::stop, now);
    outcomes = dispatcher->handle(std::span<const Event>(&stop, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::applied);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "STOP\n");
    auto master = argv(State::master, now + 1000000);
    REQUIRE(dispatcher->handle(std::span<const Event>(&master, 1)));
    {
        auto store = StateStore::open(config.state_dir);
        REQUIRE(store);
        auto lock = store->lock(Kind::instance, "VI_1");
        REQUIRE(lock);
        auto record = lock->record();
        CHECK(record.boot == boot_id());
        CHECK(record.last_change_boottime_usec == now + 1000000);
        record.boot ^= 1;
        REQUIRE(lock->set_record(record));
    }
    outcomes = dispatcher->handle(std::span<const Event>(&stop, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::applied);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "STOP\n");

    // Only STOP is ordered this way: other argv states race at keepalived's
    // fork and are applied as they come.
    auto early_backup = argv(State::backup, now - 5000);
    outcomes = dispatcher->handle(std::span<const Event>(&early_backup, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::applied);
}

TEST_CASE("dispatch: 50 concurrent invocations with sequences leave the highest", "[dispatch][concurrency]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.defaults.dbus.signal = false;  // no signal on whatever system bus the machine has
    REQUIRE(Dispatcher::open(config));
    std::vector<std::uint64_t> sequences(50);
    for (std::size_t i = 0; i < sequences.size(); ++i)
        sequences[i] = i + 1;
    std::mt19937 shuffle_seed(42);
    std::shuffle(sequences.begin(), sequences.end(), shuffle_seed);
    // Sequence 50 (the highest) is MASTER, every other one BACKUP or FAULT.
    auto state_of = [](std::uint64_t s) { return s == 50 ? State::master : (s % 2 ? State::backup : State::fault); };
    std::vector<pid_t> children;
    for (auto seq : sequences) {
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            auto dispatcher = Dispatcher::open(config);
            if (!dispatcher)
                ::_exit(2);
            auto event = make("VI_1", state_of(seq), seq);
            event.source = Source::argv;
            auto outcomes = dispatcher->handle(std::span<const Event>(&event, 1));
            ::_exit(outcomes && outcomes->front().status != Status::failed ? 0 : 1);
        }
        children.push_back(child);
    }
    for (auto child : children) {
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    auto journal = journal_of(config);
    REQUIRE(journal.size() == 50);
    // The journal order of one instance is the order states were applied:
    // every applied sequence is higher than all applied before it.
    std::uint64_t highest = 0;
    std::size_t applied = 0;
    for (const auto& entry : journal) {
        auto seq = entry["sequence"].get<std::uint64_t>();
        if (entry["outcome"] == "applied") {
            CHECK(seq > highest);
            highest = seq;
            ++applied;
        } else {
            CHECK(entry["outcome"] == "stale");
            CHECK(seq < highest);
        }
    }
    CHECK(highest == 50);
    CHECK(applied >= 1);
}

TEST_CASE("dispatch: rejected input and checker lines are journalled", "[dispatch]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.defaults.dbus.signal = false;  // no signal on whatever system bus the machine has
    auto dispatcher = Dispatcher::open(config);
    REQUIRE(dispatcher);
    Error error{ErrorKind::invalid, {}, "bad"};
    REQUIRE(dispatcher->journal({rejected_entry(Source::fifo, "INSTANCE \"\xff\n\" X", error, 1),
                                 checker_entry("VS [10.0.0.1]:tcp:80 UP", 2)}));
    auto journal = journal_of(config);
    REQUIRE(journal.size() == 2);
    CHECK(journal[0]["type"] == "rejected");
    CHECK(journal[0]["input"] == "\"INSTANCE \\\"\\xff\\x0a\\\" X\"");
    CHECK(journal[1]["type"] == "checker");
}

TEST_CASE("dispatch: a sink no instance has configured is left alone per transition and still counted by flush",
          "[dispatch][pending]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    config.defaults.dbus.signal = false;
    config.defaults.socket.path = tmp.str("nobody-listens.sock");
    config.defaults.socket.retries = 0;
    {
        auto dispatcher = Dispatcher::open(config);
        REQUIRE(dispatcher);
        auto outcomes = dispatcher->handle(std::vector<Event>{make("VI_1", State::master, 1)});
        REQUIRE(outcomes);
        CHECK(outcomes->front().undelivered);
    }
    REQUIRE(std::filesystem::exists(tmp.path() / "state/pending/socket/instance:VI_1"));
    // The socket is no longer configured anywhere: a transition neither
    // reads nor drops what it was owed, and makes no directory for the
    // acknowledged D-Bus call nobody configured either.
    // A signal to a bus that is not there keeps a sink configured, so the
    // flush before the transition runs.
    config.defaults.socket.path.clear();
    config.defaults.dbus.signal = true;
    config.defaults.dbus.bus = "unix:path=" + tmp.str("no-bus.sock");
    auto dispatcher = Dispatcher::open(config);
    REQUIRE(dispatcher);
    auto outcomes = dispatcher->handle(std::vector<Event>{make("VI_2", State::backup, 2)});
    REQUIRE(outcomes);
    CHECK_FALSE(outcomes->front().undelivered);
    CHECK(std::filesystem::exists(tmp.path() / "state/pending/socket/instance:VI_1"));
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "state/pending/dbus"));
    auto flushed = dispatcher->flush();
    REQUIRE(flushed);
    CHECK(flushed->delivered == 0);
    CHECK(flushed->remaining == 1);
    CHECK(std::filesystem::exists(tmp.path() / "state/pending/socket/instance:VI_1"));
}
