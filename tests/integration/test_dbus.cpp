// SPDX-License-Identifier: GPL-2.0-or-later
// The D-Bus sink on a private dbus-daemon: an sd-bus subscriber and an
// outside client (busctl monitor) see every signal; the acknowledged call
// waits for a late consumer and is kept pending for one that never comes.
#include <sys/stat.h>
#include <sys/types.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "listener.hpp"
#include "private_bus.hpp"
#include "process.hpp"

using namespace kanotify::test;

namespace {

struct Signal {
    std::string path, name, state, previous;
    std::uint32_t priority = 0;
    std::uint64_t sequence = 0, time_usec = 0;
    std::string kind, interface;
};

int on_signal(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* out = static_cast<std::vector<Signal>*>(userdata);
    Signal s;
    const char *name = nullptr, *state = nullptr, *previous = nullptr;
    s.path = sd_bus_message_get_path(m);
    if (sd_bus_message_read(m, "sssutt", &name, &state, &previous, &s.priority, &s.sequence, &s.time_usec) < 0)
        return 0;
    s.name = name;
    s.state = state;
    s.previous = previous;
    if (sd_bus_message_enter_container(m, 'a', "{sv}") > 0) {
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
            const char* key = nullptr;
            sd_bus_message_read(m, "s", &key);
            const char* contents = nullptr;
            sd_bus_message_peek_type(m, nullptr, &contents);
            if (std::string(contents) == "s") {
                const char* value = nullptr;
                sd_bus_message_read(m, "v", "s", &value);
                if (std::string(key) == "kind")
                    s.kind = value;
                if (std::string(key) == "interface")
                    s.interface = value;
            } else {
                sd_bus_message_skip(m, "v");
            }
            sd_bus_message_exit_container(m);
        }
        sd_bus_message_exit_container(m);
    }
    out->push_back(s);
    return 0;
}

struct Calls {
    std::vector<std::string> states;
    bool fail_first = false;
};

int on_transition(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    auto* calls = static_cast<Calls*>(userdata);
    const char *name = nullptr, *state = nullptr, *previous = nullptr;
    std::uint32_t priority = 0;
    std::uint64_t sequence = 0, time = 0;
    if (sd_bus_message_read(m, "sssutt", &name, &state, &previous, &priority, &sequence, &time) < 0)
        return -EINVAL;
    calls->states.push_back(std::string(name) + " " + state);
    (void)error;
    return sd_bus_reply_method_return(m, nullptr);
}

const sd_bus_vtable agent_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Transition", "sssutta{sv}", "", on_transition, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

void config(const TempDir& tmp, const std::string& text) {
    write_file(tmp.path() / "kanotify.toml", text);
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
}

std::vector<std::string> notify(const TempDir& tmp, std::vector<std::string> words) {
    std::vector<std::string> argv{KANOTIFY_BINARY, "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                                  "--state-dir", tmp.str("state")};
    argv.insert(argv.end(), words.begin(), words.end());
    return argv;
}

std::vector<nlohmann::json> deliveries(const TempDir& tmp) {
    auto r = run(tmp, {KANOTIFY_BINARY, "history", "-n", "0", "--json", "--config", tmp.str("kanotify.toml"),
                       "--state-dir", tmp.str("state")});
    std::vector<nlohmann::json> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
        auto nl = r.out.find('\n', start);
        auto entry = nlohmann::json::parse(r.out.substr(start, nl - start));
        if (entry["type"] == "delivery")
            out.push_back(entry);
        start = nl + 1;
    }
    return out;
}

}  // namespace

TEST_CASE("dbus: every StateChanged signal reaches an sd-bus subscriber and busctl monitor", "[dbus]") {
    TempDir tmp;
    PrivateBus bus(tmp);
    config(tmp, fmt::format("[dbus]\nbus = \"{}\"\n[instance.VI_1]\ninterface = \"eth0\"\n", bus.address()));

    sd_bus* subscriber = bus.connect();
    std::vector<Signal> seen;
    REQUIRE(sd_bus_add_match(subscriber, nullptr,
                             "type='signal',interface='org.kanotify.Instance1',member='StateChanged'", on_signal,
                             &seen) >= 0);
    pump(subscriber, [] { return false; }, std::chrono::milliseconds(100));  // the match is in place
    auto monitor = spawn({"/usr/bin/busctl", "--address=" + bus.address(), "monitor", "--match",
                          "type='signal',interface='org.kanotify.Instance1'"},
                         tmp.str("monitor.out"), tmp.str("monitor.err"));
    // busctl is monitoring once the daemon says so.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (read_file(tmp.path() / "bus.err").find("became a monitor") == std::string::npos) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    REQUIRE(run(tmp, notify(tmp, {"INSTANCE", "VI_1", "BACKUP", "100"})).status == 0);
    REQUIRE(run(tmp, notify(tmp, {"INSTANCE", "VI_1", "MASTER", "100"})).status == 0);
    REQUIRE(run(tmp, notify(tmp, {"GROUP", "G-1", "FAULT", "0"})).status == 0);
    REQUIRE(pump(subscriber, [&] { return seen.size() >= 3; }, std::chrono::seconds(10)));
    CHECK(seen.size() == 3);
    CHECK(seen[0].path == "/org/kanotify/instance/VI_5f1");
    CHECK(seen[0].name == "VI_1");
    CHECK(seen[0].state == "BACKUP");
    CHECK(seen[0].previous.empty());
    CHECK(seen[0].priority == 100);
    CHECK(seen[0].kind == "INSTANCE");
    CHECK(seen[0].interface == "eth0");
    CHECK(seen[1].state == "MASTER");
    CHECK(seen[1].previous == "BACKUP");
    CHECK(seen[1].time_usec > seen[0].time_usec);
    CHECK(seen[2].path == "/org/kanotify/group/G_2d1");
    CHECK(seen[2].kind == "GROUP");
    CHECK(seen[2].state == "FAULT");
    sd_bus_flush_close_unref(subscriber);

    // The outside client saw the same three.
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::string text;
    auto count = [&] {
        text = read_file(tmp.path() / "monitor.out");
        std::size_t n = 0;
        for (auto at = text.find("Member=StateChanged"); at != std::string::npos;
             at = text.find("Member=StateChanged", at + 1))
            ++n;
        return n;
    };
    while (count() < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ::kill(monitor, SIGTERM);
    (void)wait_status(monitor);
    CHECK(count() == 3);
    CHECK_THAT(text, Catch::Contains("STRING \"MASTER\""));
    CHECK_THAT(text, Catch::Contains("Path=/org/kanotify/group/G_2d1"));
    auto journal = deliveries(tmp);
    REQUIRE(journal.size() == 3);
    CHECK(journal[0]["sink"] == "dbus-signal");
    CHECK(journal[0]["outcome"] == "delivered");
}

TEST_CASE("dbus: the acknowledged call reaches a consumer that appears late", "[dbus]") {
    TempDir tmp;
    PrivateBus bus(tmp);
    config(tmp, fmt::format("[dbus]\nbus = \"{}\"\nsignal = false\ndestination = \"org.kanotify.TestAgent\"\n"
                            "timeout_ms = 1000\nretries = 6\n",
                            bus.address()));
    auto pid = spawn(notify(tmp, {"INSTANCE", "VI_1", "MASTER", "100"}), tmp.str("k.out"), tmp.str("k.err"));
    // Let the first attempts fail: nobody owns the name yet.
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    sd_bus* agent = bus.connect();
    Calls calls;
    REQUIRE(sd_bus_add_object_vtable(agent, nullptr, "/org/kanotify/agent", "org.kanotify.Agent1", agent_vtable,
                                     &calls) >= 0);
    REQUIRE(sd_bus_request_name(agent, "org.kanotify.TestAgent", 0) >= 0);
    REQUIRE(pump(agent, [&] { return !calls.states.empty(); }, std::chrono::seconds(10)));
    CHECK(wait_status(pid) == 0);
    sd_bus_flush_close_unref(agent);
    REQUIRE(calls.states.size() == 1);
    CHECK(calls.states[0] == "VI_1 MASTER");
    auto journal = deliveries(tmp);
    REQUIRE(journal.size() == 1);
    CHECK(journal[0]["sink"] == "dbus");
    CHECK(journal[0]["outcome"] == "delivered");
    CHECK(journal[0]["attempts"].get<int>() > 1);
}

TEST_CASE("dbus: a consumer that never appears is reported, kept, and flushed once it does", "[dbus]") {
    TempDir tmp;
    PrivateBus bus(tmp);
    config(tmp, fmt::format("[dbus]\nbus = \"{}\"\nsignal = false\ndestination = \"org.kanotify.TestAgent\"\n"
                            "timeout_ms = 300\nretries = 1\n",
                            bus.address()));
    CHECK(run(tmp, notify(tmp, {"INSTANCE", "VI_1", "MASTER", "100"})).status == 69);
    CHECK(run(tmp, notify(tmp, {"INSTANCE", "VI_1", "BACKUP", "100"})).status == 69);
    auto journal = deliveries(tmp);
    REQUIRE(journal.size() == 2);
    CHECK(journal[1]["outcome"] == "pending");
    CHECK_THAT(journal[1]["detail"].get<std::string>(), Catch::Contains("NameHasNoOwner"));

    sd_bus* agent = bus.connect();
    Calls calls;
    REQUIRE(sd_bus_add_object_vtable(agent, nullptr, "/org/kanotify/agent", "org.kanotify.Agent1", agent_vtable,
                                     &calls) >= 0);
    REQUIRE(sd_bus_request_name(agent, "org.kanotify.TestAgent", 0) >= 0);
    auto flush = spawn({KANOTIFY_BINARY, "flush", "--config", tmp.str("kanotify.toml"), "--state-dir",
                        tmp.str("state")},
                       tmp.str("f.out"), tmp.str("f.err"));
    REQUIRE(pump(agent, [&] { return !calls.states.empty(); }, std::chrono::seconds(10)));
    CHECK(wait_status(flush) == 0);
    sd_bus_flush_close_unref(agent);
    REQUIRE(calls.states.size() == 1);  // the latest state only
    CHECK(calls.states[0] == "VI_1 BACKUP");
}

namespace {

int count_properties_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* seen = static_cast<std::vector<std::string>*>(userdata);
    seen->push_back(sd_bus_message_get_path(m));
    return 0;
}

}  // namespace

TEST_CASE("dbus: the FIFO reader serves State, Priority and LastChange with PropertiesChanged per transition",
          "[dbus][fifo]") {
    TempDir tmp;
    PrivateBus bus(tmp);
    config(tmp, fmt::format("[dbus]\nbus = \"{}\"\nname = \"org.kanotify.Test\"\nsignal = false\n", bus.address()));
    auto fifo = tmp.str("notify.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    sd_bus* watcher = bus.connect();
    std::vector<std::string> changed;
    REQUIRE(sd_bus_add_match(watcher, nullptr,
                             "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                             "path_namespace='/org/kanotify'",
                             count_properties_changed, &changed) >= 0);
    pump(watcher, [] { return false; }, std::chrono::milliseconds(100));
    auto reader = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                         "--state-dir", tmp.str("state"), fifo},
                        tmp.str("fifo.out"), tmp.str("fifo.err"));
    auto busctl = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{"/usr/bin/busctl", "--address=" + bus.address()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(tmp, argv);
    };
    // The name is owned once the service is up.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (busctl({"status", "org.kanotify.Test"}).status != 0) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    {
        std::ofstream out(fifo);
        out << "INSTANCE \"VI_1\" BACKUP 100\n" << std::flush;
        out << "INSTANCE \"VI_1\" MASTER 100\n" << std::flush;
        out << "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150\n" << std::flush;
        out << "GROUP \"G1\" MASTER 0\n" << std::flush;
    }
    REQUIRE(pump(watcher, [&] { return changed.size() >= 4; }, std::chrono::seconds(10)));
    sd_bus_flush_close_unref(watcher);
    CHECK(std::count(changed.begin(), changed.end(), "/org/kanotify/instance/VI_5f1") == 3);
    CHECK(std::count(changed.begin(), changed.end(), "/org/kanotify/group/G1") == 1);

    auto state = busctl({"get-property", "org.kanotify.Test", "/org/kanotify/instance/VI_5f1",
                         "org.kanotify.Instance1", "State", "Priority", "LastChange"});
    CHECK(state.status == 0);
    CHECK_THAT(state.out, Catch::StartsWith("s \"MASTER\"\nu 150\nt "));  // MASTER_RX_LOWER_PRI keeps the state
    auto introspect = busctl({"introspect", "org.kanotify.Test", "/org/kanotify/group/G1"});
    CHECK_THAT(introspect.out, Catch::Contains(".State"));
    CHECK_THAT(introspect.out, Catch::Contains(".LastChange"));
    auto managed = busctl({"call", "org.kanotify.Test", "/org/kanotify", "org.freedesktop.DBus.ObjectManager",
                           "GetManagedObjects"});
    CHECK_THAT(managed.out, Catch::Contains("\"/org/kanotify/instance/VI_5f1\""));
    CHECK_THAT(managed.out, Catch::Contains("\"/org/kanotify/group/G1\""));
    ::kill(reader, SIGTERM);
    CHECK(wait_status(reader) == 0);
}

TEST_CASE("dbus: the resident reader reconnects after the bus daemon restarts", "[dbus][fifo]") {
    TempDir tmp;
    auto bus = std::make_unique<PrivateBus>(tmp);
    auto address = bus->address();
    config(tmp, fmt::format("[dbus]\nbus = \"{}\"\nsignal = false\ndestination = \"org.kanotify.TestAgent\"\n"
                            "timeout_ms = 500\nretries = 8\n",
                            address));
    auto fifo = tmp.str("notify.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto reader = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                         "--state-dir", tmp.str("state"), fifo},
                        tmp.str("fifo.out"), tmp.str("fifo.err"));
    auto serve_one = [&](const char* line, const std::string& expected) {
        sd_bus* agent = bus->connect();
        Calls calls;
        REQUIRE(sd_bus_add_object_vtable(agent, nullptr, "/org/kanotify/agent", "org.kanotify.Agent1", agent_vtable,
                                         &calls) >= 0);
        REQUIRE(sd_bus_request_name(agent, "org.kanotify.TestAgent", 0) >= 0);
        {
            std::ofstream out(fifo);
            out << line << std::flush;
        }
        REQUIRE(pump(agent, [&] { return !calls.states.empty(); }, std::chrono::seconds(15)));
        sd_bus_flush_close_unref(agent);
        CHECK(calls.states.back() == expected);
    };
    serve_one("INSTANCE \"VI_1\" BACKUP 100\n", "VI_1 BACKUP");
    // The bus daemon goes away and comes back on the same address.
    bus.reset();
    bus = std::make_unique<PrivateBus>(tmp);
    serve_one("INSTANCE \"VI_1\" MASTER 100\n", "VI_1 MASTER");
    ::kill(reader, SIGTERM);
    CHECK(wait_status(reader) == 0);
    auto journal = deliveries(tmp);
    REQUIRE(journal.size() >= 2);
    CHECK(journal.back()["outcome"] == "delivered");
    CHECK(journal.back()["state"] == "MASTER");
}

TEST_CASE("dbus: the served properties come back after the bus daemon restarts", "[dbus][fifo]") {
    TempDir tmp;
    auto bus = std::make_unique<PrivateBus>(tmp);
    config(tmp, fmt::format("[dbus]\nbus = \"{}\"\nname = \"org.kanotify.Test\"\nsignal = false\n", bus->address()));
    auto fifo = tmp.str("notify.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto reader = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                         "--state-dir", tmp.str("state"), fifo},
                        tmp.str("fifo.out"), tmp.str("fifo.err"));
    auto state_of = [&] {
        return run(tmp, {"/usr/bin/busctl", "--address=" + bus->address(), "get-property", "org.kanotify.Test",
                         "/org/kanotify/instance/VI_5f1", "org.kanotify.Instance1", "State"});
    };
    auto await_state = [&](const std::string& expected) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (state_of().out != "s \"" + expected + "\"\n") {
            if (std::chrono::steady_clock::now() > deadline)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return true;
    };
    {
        std::ofstream out(fifo);
        out << "INSTANCE \"VI_1\" BACKUP 100\n" << std::flush;
    }
    CHECK(await_state("BACKUP"));
    bus.reset();
    {
        std::ofstream out(fifo);  // a transition while the bus is away
        out << "INSTANCE \"VI_1\" MASTER 100\n" << std::flush;
    }
    bus = std::make_unique<PrivateBus>(tmp);
    CHECK(await_state("MASTER"));
    ::kill(reader, SIGTERM);
    CHECK(wait_status(reader) == 0);
}

TEST_CASE("dbus: a bus that never answers costs at most the configured timeout", "[dbus]") {
    TempDir tmp;
    Listener silent(tmp.str("silent.sock"));
    silent.serve(Behaviour::hang);  // accepts, reads, never answers the authentication
    config(tmp, fmt::format("[dbus]\nbus = \"unix:path={}\"\ntimeout_ms = 300\n", tmp.str("silent.sock")));
    auto started = std::chrono::steady_clock::now();
    auto r = run(tmp, notify(tmp, {"INSTANCE", "VI_1", "MASTER", "100"}));
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(r.status == 0);  // a signal is best-effort: recorded, not owed
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    // Functional bound (sd-bus's own default would be 25 s per wait).
    CHECK(took < std::chrono::seconds(5));
    auto journal = deliveries(tmp);
    REQUIRE(journal.size() == 1);
    CHECK(journal[0]["sink"] == "dbus-signal");
    CHECK(journal[0]["outcome"] == "skipped");
}
