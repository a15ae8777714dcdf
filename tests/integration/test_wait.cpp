// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify wait` and `kanotify history --follow` against the real binary.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "process.hpp"

using namespace kanotify::test;
using Clock = std::chrono::steady_clock;

namespace {

struct Dir {
    TempDir tmp;
    Dir() {
        write_file(tmp.path() / "kanotify.toml", "[dbus]\nsignal = false\n[journal]\nmax_bytes = 4096\n");
        ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    }
    std::vector<std::string> cmd(std::vector<std::string> args) const {
        std::vector<std::string> argv{KANOTIFY_BINARY};
        argv.insert(argv.end(), args.begin(), args.end());
        for (auto extra : {"--config", "--state-dir"})
            argv.emplace_back(extra), argv.push_back(std::string(extra) == "--config" ? tmp.str("kanotify.toml")
                                                                                        : tmp.str("state"));
        return argv;
    }
    void notify(const std::string& state, const std::string& name = "VI_1") const {
        auto argv = cmd({"--log-target", "stderr"});
        for (const auto& w : {std::string("INSTANCE"), name, state, std::string("1")})
            argv.push_back(w);
        REQUIRE(wait_status(spawn(argv, tmp.str("n.out"), tmp.str("n.err"))) == 0);
    }
};

}  // namespace

TEST_CASE("wait: returns as soon as the state file says so", "[wait]") {
    Dir d;
    d.notify("BACKUP");
    auto waiter = spawn(d.cmd({"wait", "--state", "master", "--timeout", "10s", "VI_1"}), d.tmp.str("w.out"),
                        d.tmp.str("w.err"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it block
    d.notify("MASTER");
    auto recorded = Clock::now();
    CHECK(wait_status(waiter) == 0);
    auto latency = Clock::now() - recorded;
    CHECK(read_file(d.tmp.path() / "w.out") == "MASTER\n");
    // Functional bound, not a benchmark: inotify wakes it on the rename.
    CHECK(latency < std::chrono::milliseconds(500));
    // Already there: returns at once.
    auto r = run(d.tmp, d.cmd({"wait", "--state", "MASTER", "--timeout", "1s", "VI_1"}));
    CHECK(r.status == 0);
    // Without --state: the next change of any kind.
    auto change = spawn(d.cmd({"wait", "--timeout", "10s", "VI_1"}), d.tmp.str("c.out"), d.tmp.str("c.err"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    d.notify("MASTER", "VI_2");  // another instance: not ours
    d.notify("FAULT");
    CHECK(wait_status(change) == 0);
    CHECK(read_file(d.tmp.path() / "c.out") == "FAULT\n");
}

TEST_CASE("wait: exit 75 on timeout, 64 on bad input", "[wait]") {
    Dir d;
    d.notify("BACKUP");
    auto start = Clock::now();
    auto r = run(d.tmp, d.cmd({"wait", "--state", "master", "--timeout", "300ms", "VI_1"}));
    CHECK(r.status == 75);
    CHECK(Clock::now() - start >= std::chrono::milliseconds(300));
    CHECK_THAT(r.err, Catch::Contains("timed out"));
    CHECK(run(d.tmp, d.cmd({"wait", "--state", "primary", "VI_1"})).status == 64);
    CHECK(run(d.tmp, d.cmd({"wait", "--timeout", "soon", "VI_1"})).status == 64);
    CHECK(run(d.tmp, d.cmd({"wait", "../etc"})).status == 65);
}

TEST_CASE("history --follow prints new entries, across rotations", "[history]") {
    Dir d;
    d.notify("BACKUP");
    auto follower = spawn(d.cmd({"history", "--follow", "--json", "-n", "1"}), d.tmp.str("f.out"), d.tmp.str("f.err"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // journal max_bytes is 4096: these rotate the journal several times.
    for (int i = 0; i < 40; ++i)
        d.notify(i % 2 ? "MASTER" : "BACKUP", fmt::format("VI_{}", i));
    auto deadline = Clock::now() + std::chrono::seconds(10);
    auto count = [&] {
        auto text = read_file(d.tmp.path() / "f.out");
        return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    };
    while (count() < 41 && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ::kill(follower, SIGTERM);
    (void)wait_status(follower);
    CHECK(count() == 41);
    auto text = read_file(d.tmp.path() / "f.out");
    for (int i = 0; i < 40; ++i)
        CHECK_THAT(text, Catch::Contains(fmt::format("\"name\":\"VI_{}\"", i)));
}
