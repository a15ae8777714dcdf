// SPDX-License-Identifier: GPL-2.0-or-later
// The Unix-socket sink against a real listener that misbehaves in every way
// the design names; the latest state is delivered once it recovers.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "foreign_listener.hpp"
#include "listener.hpp"
#include "process.hpp"

using namespace kanotify::test;

namespace {

struct Setup {
    TempDir tmp;
    std::string socket = tmp.str("agent.sock");
    Listener listener{socket};

    Setup() {
        // Short timeouts and one retry keep the failing cases quick.
        write_file(tmp.path() / "kanotify.toml", "[dbus]\nsignal = false\n[socket]\ntimeout_ms = 300\nretries = 1\n");
        ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    }
    Run kanotify(std::vector<std::string> args) {
        std::vector<std::string> argv{KANOTIFY_BINARY, "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                                      "--state-dir", tmp.str("state"), "--socket", socket};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(tmp, argv);
    }
    Run flush() {
        return run(tmp, {KANOTIFY_BINARY, "flush", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                         "--state-dir", tmp.str("state"), "--socket", socket});
    }
    Run notify(const std::string& state, const std::string& name = "VI_1") {
        return kanotify({"--router-id", "r-" + name, "INSTANCE", name, state, "100"});
    }
    std::vector<nlohmann::json> deliveries() {
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
};

std::string header(const std::string& request, const std::string& name) {
    auto at = request.find("\r\n" + name + ": ");
    if (at == std::string::npos)
        return {};
    at += name.size() + 4;
    return request.substr(at, request.find("\r\n", at) - at);
}

nlohmann::json body(const std::string& request) {
    auto at = request.find("\r\n\r\n");
    REQUIRE(at != std::string::npos);
    auto text = request.substr(at + 4);
    // A single recv(4096) got the whole request: the body is all there.
    REQUIRE(std::to_string(text.size()) == header(request, "Content-Length"));
    return nlohmann::json::parse(text);
}

}  // namespace

TEST_CASE("socket sink: a healthy listener gets neutron's headers and the JSON event in one read", "[socket]") {
    Setup s;
    s.listener.serve(Behaviour::ok);
    auto r = s.notify("MASTER");
    CHECK(r.status == 0);
    auto requests = s.listener.requests();
    REQUIRE(requests.size() == 1);
    const auto& request = requests.front();
    CHECK(request.starts_with("POST / HTTP/1.1\r\n"));
    CHECK(request.size() < 4096);
    CHECK(header(request, "X-Neutron-Router-Id") == "r-VI_1");
    CHECK(header(request, "X-Neutron-State") == "primary");
    auto event = body(request);
    CHECK(event["name"] == "VI_1");
    CHECK(event["state"] == "MASTER");
    CHECK(event["priority"] == 100);
    auto deliveries = s.deliveries();
    REQUIRE(deliveries.size() == 1);
    CHECK(deliveries[0]["outcome"] == "delivered");
    CHECK(deliveries[0]["attempts"] == 1);
}

TEST_CASE("socket sink: the newest agent's bare LF-only answer counts as success", "[socket]") {
    Setup s;
    s.listener.serve(Behaviour::ok_lf_only);
    CHECK(s.notify("BACKUP").status == 0);
    REQUIRE(s.listener.requests().size() == 1);
    CHECK(header(s.listener.requests()[0], "X-Neutron-State") == "backup");
}

TEST_CASE("socket sink: every failure is retried, reported and kept, and recovery delivers exactly the latest state",
          "[socket]") {
    struct Case {
        const char* name;
        std::function<void(Listener&)> break_it;
        const char* says;
    };
    std::vector<Case> cases{
        {"absent", [](Listener& l) { l.stop(); }, "No such file"},
        {"refusing", [](Listener& l) { l.refuse(); }, "refused"},
        {"full backlog", [](Listener& l) { l.full_backlog(); }, "backlog is full"},
        {"500", [](Listener& l) { l.serve(Behaviour::status_500); }, "answered 500"},
        {"hanging", [](Listener& l) { l.serve(Behaviour::hang); }, "no answer"},
        {"closing early", [](Listener& l) { l.serve(Behaviour::close_early); }, "closed the connection"},
    };
    for (const auto& c : cases) {
        SECTION(c.name) {
            Setup s;
            c.break_it(s.listener);
            auto first = s.notify("MASTER");
            CHECK(first.status == 69);
            auto second = s.notify("BACKUP");
            CHECK(second.status == 69);
            CHECK(read_file(s.tmp.path() / "state/VI_1.state") == "BACKUP\n");  // recorded all the same
            auto deliveries = s.deliveries();
            REQUIRE(deliveries.size() == 2);
            for (const auto& d : deliveries) {
                CHECK(d["outcome"] == "pending");
                CHECK(d["attempts"] == 2);  // the first try and one retry
                CHECK_THAT(d["detail"].get<std::string>(), Catch::Contains(c.says));
            }
            auto status = run(s.tmp, {KANOTIFY_BINARY, "status", "--config", s.tmp.str("kanotify.toml"),
                                      "--state-dir", s.tmp.str("state")});
            CHECK_THAT(status.out, Catch::Contains("socket"));

            // Still down: flush reports what is left, exit 69.
            CHECK(s.flush().status == 69);

            s.listener.serve(Behaviour::ok);
            s.listener.clear();
            auto flushed = s.flush();
            CHECK(flushed.status == 0);
            CHECK_THAT(flushed.out, Catch::Contains("1 delivered, 0 still pending"));
            auto requests = s.listener.requests();
            REQUIRE(requests.size() == 1);  // not MASTER then BACKUP: the latest state only
            CHECK(header(requests[0], "X-Neutron-State") == "backup");
            CHECK(body(requests[0])["state"] == "BACKUP");
            // Nothing is owed any more: a second flush sends nothing.
            CHECK(s.flush().status == 0);
            CHECK(s.listener.requests().size() == 1);
        }
    }
}

TEST_CASE("socket sink: the next transition delivers what is owed first, oldest first", "[socket]") {
    Setup s;
    s.listener.serve(Behaviour::status_500);
    CHECK(s.notify("MASTER", "VI_1").status == 69);
    CHECK(s.notify("MASTER", "VI_2").status == 69);
    s.listener.serve(Behaviour::ok);
    CHECK(s.notify("BACKUP", "VI_3").status == 0);
    auto requests = s.listener.requests();
    REQUIRE(requests.size() == 3);
    CHECK(body(requests[0])["name"] == "VI_1");
    CHECK(body(requests[1])["name"] == "VI_2");
    CHECK(body(requests[2])["name"] == "VI_3");
    // VI_1 pending, VI_1 flushed (still failing), VI_2 pending, then both
    // flushed and delivered before VI_3.
    auto deliveries = s.deliveries();
    REQUIRE(deliveries.size() == 6);
    CHECK(deliveries[1]["name"] == "VI_1");
    CHECK(deliveries[1]["flushed"] == true);
    CHECK(deliveries[1]["outcome"] == "pending");
    CHECK(deliveries[3]["name"] == "VI_1");
    CHECK(deliveries[3]["outcome"] == "delivered");
    CHECK(deliveries[4]["name"] == "VI_2");
    CHECK(deliveries[4]["outcome"] == "delivered");
    CHECK(deliveries[5]["name"] == "VI_3");
    CHECK(deliveries[5]["outcome"] == "delivered");
}

TEST_CASE("socket sink: a newer transition of the same instance supersedes what is owed", "[socket]") {
    Setup s;
    s.listener.serve(Behaviour::close_early);
    CHECK(s.notify("MASTER").status == 69);
    s.listener.serve(Behaviour::ok);
    CHECK(s.notify("BACKUP").status == 0);
    auto requests = s.listener.requests();
    REQUIRE(requests.size() == 1);  // the owed MASTER is never sent after the newer BACKUP
    CHECK(body(requests[0])["state"] == "BACKUP");
    CHECK(s.flush().status == 0);
    CHECK(s.listener.requests().size() == 1);
}

TEST_CASE("socket sink: states neutron has no name for are not sent to a router", "[socket]") {
    Setup s;
    s.listener.serve(Behaviour::ok);
    CHECK(s.notify("STOP").status == 0);
    CHECK(s.listener.requests().empty());
    auto deliveries = s.deliveries();
    REQUIRE(deliveries.size() == 1);
    CHECK(deliveries[0]["outcome"] == "skipped");
    // Without a router id every state is delivered, as JSON.
    CHECK(s.kanotify({"INSTANCE", "VI_9", "STOP", "0"}).status == 0);
    REQUIRE(s.listener.requests().size() == 1);
    CHECK(header(s.listener.requests()[0], "X-Neutron-State").empty());
    CHECK(body(s.listener.requests()[0])["state"] == "STOP");
}

TEST_CASE("socket sink: a listener owned by another uid is refused when an owner is configured", "[socket][security]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root to run a listener as another uid");
        return;
    }
    Setup s;
    write_file(s.tmp.path() / "kanotify.toml", "[dbus]\nsignal = false\n[socket]\ntimeout_ms = 300\nretries = 1\nowner_uid = 0\n");
    ::chmod(s.tmp.str().c_str(), 0777);
    auto received = s.tmp.str("rogue.received");
    ForeignListener rogue(s.socket, 65534, received);
    REQUIRE(rogue.started());
    auto r = s.notify("MASTER");
    rogue.stop();
    CHECK(r.status == 69);
    CHECK_FALSE(std::filesystem::exists(received));  // not one byte was sent to it
    auto deliveries = s.deliveries();
    REQUIRE(deliveries.size() == 1);
    CHECK(deliveries[0]["attempts"] == 1);  // refusing is not retried
    CHECK_THAT(deliveries[0]["detail"].get<std::string>(), Catch::Contains("runs as uid 65534"));
    // Recorded, and owed to the real agent, which may come back under the right owner.
    CHECK(read_file(s.tmp.path() / "state/VI_1.state") == "MASTER\n");
    CHECK(std::filesystem::exists(s.tmp.path() / "state/pending/socket/instance:VI_1"));
    s.listener.serve(Behaviour::ok);
    CHECK(s.flush().status == 0);
    REQUIRE(s.listener.requests().size() == 1);
    CHECK(body(s.listener.requests()[0])["state"] == "MASTER");
}

TEST_CASE("socket sink: the agent restarted mid-request, the FIFO reader delivers the latest state to the new one",
          "[socket][fifo]") {
    Setup s;
    write_file(s.tmp.path() / "kanotify.toml",
               fmt::format("[dbus]\nsignal = false\n[socket]\npath = \"{}\"\ntimeout_ms = 400\nretries = 4\n"
                           "[instance.VI_1]\nrouter_id = \"r1\"\n",
                           s.socket));
    auto fifo = s.tmp.str("notify.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // The agent takes the request, then hangs: it is being restarted.
    s.listener.serve(Behaviour::hang);
    auto pid = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", s.tmp.str("kanotify.toml"),
                      "--state-dir", s.tmp.str("state"), fifo},
                     s.tmp.str("fifo.out"), s.tmp.str("fifo.err"));
    REQUIRE(pid > 0);
    int fd = -1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(fd >= 0);
    std::string line = "INSTANCE \"VI_1\" MASTER 100\n";
    REQUIRE(::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (s.listener.requests().empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(s.listener.requests().size() == 1);  // the request is in the old agent's hands

    // The old agent dies with the connection open; a new one listens at the path.
    auto restarted = std::chrono::steady_clock::now();
    s.listener.serve(Behaviour::ok, 5);
    deadline = restarted + std::chrono::seconds(10);
    while (s.listener.requests().empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto delivered_after = std::chrono::steady_clock::now() - restarted;
    auto requests = s.listener.requests();
    REQUIRE(requests.size() == 1);
    CHECK(header(requests[0], "X-Neutron-State") == "primary");
    CHECK(body(requests[0])["state"] == "MASTER");
    // Never stalled beyond the timeout and the retry backoff.
    CHECK(delivered_after < std::chrono::seconds(3));

    // And the reader goes on: the next transition reaches the new agent.
    line = "INSTANCE \"VI_1\" BACKUP 100\n";
    REQUIRE(::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (s.listener.requests().size() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    requests = s.listener.requests();
    REQUIRE(requests.size() == 2);
    CHECK(header(requests[1], "X-Neutron-State") == "backup");
    ::close(fd);
    ::kill(pid, SIGTERM);
    CHECK(wait_status(pid) == 0);
    auto lines = s.deliveries();
    REQUIRE(lines.size() >= 2);
    CHECK(lines.front()["outcome"] == "delivered");
    CHECK(lines.front()["attempts"].get<int>() >= 2);
    CHECK(lines.back()["outcome"] == "delivered");
}

TEST_CASE("socket sink: links planted in the pending directory are never followed, nothing owed or recorded is lost",
          "[socket][security]") {
    namespace fs = std::filesystem;
    Setup s;
    auto pending = s.tmp.path() / "state/pending/socket";
    // Recorded and owed before the attacks: VI_2 delivered, VI_3 owed.
    s.listener.serve(Behaviour::ok);
    REQUIRE(s.notify("BACKUP", "VI_2").status == 0);
    s.listener.stop();
    REQUIRE(s.notify("MASTER", "VI_3").status == 69);
    REQUIRE(fs::exists(pending / "instance:VI_3"));
    auto journal_before = read_file(s.tmp.path() / "state/journal.jsonl");

    // A symlink at an entry's name, to a well-formed entry saying FAULT: it
    // is replaced by our own entry, and FAULT never reaches the agent.
    auto forged = R"({"kind":"INSTANCE","name":"VI_1","state":"FAULT","router_id":"r-VI_1"})";
    write_file(s.tmp.path() / "victim", forged);
    fs::create_symlink(s.tmp.path() / "victim", pending / "instance:VI_1");
    CHECK(s.notify("MASTER", "VI_1").status == 69);
    CHECK_FALSE(fs::is_symlink(pending / "instance:VI_1"));
    CHECK(read_file(s.tmp.path() / "victim") == forged);

    // A symlink at the sink's directory: refused and reported; the
    // transition is still recorded and journalled, nothing lands in the
    // directory it points to.
    fs::rename(pending, s.tmp.path() / "saved");
    fs::create_directory(s.tmp.path() / "elsewhere");
    fs::create_directory_symlink(s.tmp.path() / "elsewhere", pending);
    CHECK(s.notify("BACKUP", "VI_4").status == 69);
    CHECK(read_file(s.tmp.path() / "state/VI_4.state") == "BACKUP\n");
    CHECK(fs::is_empty(s.tmp.path() / "elsewhere"));
    auto deliveries = s.deliveries();
    REQUIRE_FALSE(deliveries.empty());
    CHECK(deliveries.back()["name"] == "VI_4");
    CHECK_THAT(deliveries.back()["detail"].get<std::string>(), Catch::Contains("symlink"));

    // The operator removes the link: everything owed before is still owed
    // and delivered, the forged FAULT never.
    fs::remove(pending);
    fs::rename(s.tmp.path() / "saved", pending);
    s.listener.serve(Behaviour::ok);
    CHECK(s.flush().status == 0);
    std::map<std::string, std::string> got;
    for (const auto& r : s.listener.requests())
        got[body(r)["name"].get<std::string>()] = body(r)["state"].get<std::string>();
    CHECK(got == std::map<std::string, std::string>{{"VI_1", "MASTER"}, {"VI_3", "MASTER"}});
    CHECK(read_file(s.tmp.path() / "state/VI_2.state") == "BACKUP\n");
    CHECK(read_file(s.tmp.path() / "state/VI_3.state") == "MASTER\n");
    CHECK(read_file(s.tmp.path() / "state/VI_1.state") == "MASTER\n");
    auto journal_after = read_file(s.tmp.path() / "state/journal.jsonl");
    CHECK(journal_after.substr(0, journal_before.size()) == journal_before);
}
