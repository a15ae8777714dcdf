// SPDX-License-Identifier: GPL-2.0-or-later
// User hooks through the real binary: in order under a FIFO storm, killed
// with their children at the timeout, exit codes and output journalled,
// arguments passed literally, never through a shell.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "process.hpp"

using namespace kanotify::test;
namespace fs = std::filesystem;

namespace {

void config(const TempDir& tmp, const std::string& text) {
    write_file(tmp.path() / "kanotify.toml", "[dbus]\nsignal = false\n" + text);
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
}

std::vector<std::string> base(const TempDir& tmp) {
    return {KANOTIFY_BINARY, "--log-target", "stderr", "--config", tmp.str("kanotify.toml"), "--state-dir",
            tmp.str("state")};
}

std::vector<nlohmann::json> journal(const TempDir& tmp, const std::string& type) {
    auto r = run(tmp, {KANOTIFY_BINARY, "history", "-n", "0", "--json", "--config", tmp.str("kanotify.toml"),
                       "--state-dir", tmp.str("state")});
    std::vector<nlohmann::json> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        auto entry = nlohmann::json::parse(line);
        if (entry["type"] == type)
            out.push_back(entry);
    }
    return out;
}

// A hook that sleeps 0-20 ms at random, then appends what it saw.
std::string write_recorder(const TempDir& tmp) {
    auto path = tmp.str("recorder.sh");
    write_file(path, fmt::format("#!/bin/sh\n"
                                 "n=$(od -An -N1 -tu1 /dev/urandom)\n"
                                 "sleep $(printf '0.%03d' $((n % 21)))\n"
                                 "echo \"$KANOTIFY_INSTANCE $KANOTIFY_STATE $KANOTIFY_SEQUENCE\" >> {}\n",
                                 tmp.str("seen")));
    ::chmod(path.c_str(), 0755);
    return path;
}

struct Storm {
    std::map<std::string, std::vector<std::string>> sent;  // per instance, in order
    std::map<std::string, std::vector<std::string>> seen;
};

Storm storm(const TempDir& tmp, bool coalesce) {
    auto recorder = write_recorder(tmp);
    config(tmp, fmt::format("[hooks]\nany = [[\"{}\"]]\ncoalesce = {}\n", recorder, coalesce ? "true" : "false"));
    auto fifo = tmp.str("notify.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto argv = base(tmp);
    argv.insert(argv.begin() + 1, "fifo");
    argv.push_back(fifo);
    auto pid = spawn(argv, tmp.str("fifo.out"), tmp.str("fifo.err"));
    int fd = -1;
    for (int i = 0; i < 1000 && (fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(fd >= 0);
    Storm out;
    std::mt19937 random(7);
    const char* states[] = {"MASTER", "BACKUP", "FAULT"};
    std::string burst;
    for (int i = 0; i < 1000; ++i) {
        auto name = fmt::format("VI_{}", random() % 50);
        std::string state = states[random() % 3];
        burst += fmt::format("INSTANCE \"{}\" {} 100\n", name, state);
        out.sent[name].push_back(state);
    }
    // One burst, whole lines (the pipe holds it all).
    REQUIRE(::write(fd, burst.data(), burst.size()) == static_cast<ssize_t>(burst.size()));
    ::close(fd);
    ::kill(pid, SIGTERM);
    CHECK(wait_status(pid) == 0);
    std::ifstream seen(tmp.str("seen"));
    std::string name, state, sequence;
    while (seen >> name >> state >> sequence)
        out.seen[name].push_back(state);
    return out;
}

bool is_subsequence(const std::vector<std::string>& part, const std::vector<std::string>& whole) {
    std::size_t at = 0;
    for (const auto& item : whole)
        if (at < part.size() && part[at] == item)
            ++at;
    return at == part.size();
}

}  // namespace

TEST_CASE("hooks: a 1,000-transition storm runs each instance's hooks in order, ending with its latest state",
          "[hooks][fifo]") {
    TempDir tmp;
    auto result = storm(tmp, true);
    REQUIRE(result.sent.size() == 50);
    std::size_t ran = 0;
    for (const auto& [name, sent] : result.sent) {
        INFO(name);
        const auto& seen = result.seen[name];
        REQUIRE_FALSE(seen.empty());
        CHECK(is_subsequence(seen, sent));
        CHECK(seen.back() == sent.back());
        ran += seen.size();
    }
    CHECK(journal(tmp, "hook").size() == 1000);  // every hook journalled: run or superseded
    CHECK(ran < 1000);                            // coalescing skipped some
}

TEST_CASE("hooks: without coalescing every transition's hooks run, exactly in input order", "[hooks][fifo]") {
    TempDir tmp;
    auto result = storm(tmp, false);
    for (const auto& [name, sent] : result.sent) {
        INFO(name);
        CHECK(result.seen[name] == sent);
    }
}

TEST_CASE("hooks: a hanging hook is killed with its children at the timeout and the next one runs", "[hooks]") {
    TempDir tmp;
    auto marker = fmt::format("1{}", ::getpid() % 100000 + 100000);  // a sleep length nobody else uses
    config(tmp, fmt::format("[hooks]\ntimeout_ms = 300\nmaster = [[\"/bin/sh\", \"-c\", \"sleep {0} & sleep {0}\"],"
                            " [\"/bin/sh\", \"-c\", \"echo second ran\"], [\"/bin/sh\", \"-c\", \"exit 3\"]]\n",
                            marker));
    auto argv = base(tmp);
    for (auto w : {"INSTANCE", "VI_1", "MASTER", "100"})
        argv.emplace_back(w);
    auto started = std::chrono::steady_clock::now();
    CHECK(run(tmp, argv).status == 0);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(30));
    auto hooks = journal(tmp, "hook");
    REQUIRE(hooks.size() == 3);
    CHECK(hooks[0]["outcome"] == "timed-out");
    CHECK(hooks[0]["signal"] == SIGTERM);
    CHECK(hooks[0]["duration_usec"].get<std::int64_t>() >= 300000);
    CHECK(hooks[1]["outcome"] == "exited");
    CHECK(hooks[1]["exit_status"] == 0);
    CHECK(hooks[1]["output"] == "second ran\n");
    CHECK(hooks[2]["exit_status"] == 3);
    // The background sleep died with its group.
    auto left = run(tmp, {"/usr/bin/pgrep", "-f", "sleep " + marker});
    CHECK(left.status == 1);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
}

TEST_CASE("hooks: arguments with shell metacharacters arrive literally, keepalived's words appended", "[hooks]") {
    TempDir tmp;
    auto canary = tmp.str("pwned");
    config(tmp, fmt::format("[hooks]\nkeepalived_args = true\nany = [[\"/usr/bin/printf\", \"[%s]\", "
                            "\"$(touch {0})\", \"; touch {0}\", \"`id`\", \"a b\"]]\n",
                            canary));
    auto argv = base(tmp);
    for (auto w : {"GROUP", "G.1:x-y", "BACKUP", "0"})
        argv.emplace_back(w);
    CHECK(run(tmp, argv).status == 0);
    auto hooks = journal(tmp, "hook");
    REQUIRE(hooks.size() == 1);
    CHECK(hooks[0]["output"] == fmt::format("[$(touch {0})][; touch {0}][`id`][a b][GROUP][G.1:x-y][BACKUP][0]", canary));
    CHECK_FALSE(fs::exists(canary));
}

TEST_CASE("hooks: the environment describes the transition, stale transitions run nothing", "[hooks]") {
    TempDir tmp;
    config(tmp, "[hooks]\nany = [[\"/usr/bin/env\"]]\n");
    auto argv = base(tmp);
    for (auto w : {"--sequence", "9", "INSTANCE", "VI_1", "MASTER", "120"})
        argv.emplace_back(w);
    REQUIRE(run(tmp, argv).status == 0);
    auto stale = base(tmp);
    for (auto w : {"--sequence", "5", "INSTANCE", "VI_1", "BACKUP", "120"})
        stale.emplace_back(w);
    REQUIRE(run(tmp, stale).status == 0);
    auto hooks = journal(tmp, "hook");
    REQUIRE(hooks.size() == 1);  // nothing for the stale BACKUP
    auto env = hooks[0]["output"].get<std::string>();
    for (auto line : {"KANOTIFY_INSTANCE=VI_1\n", "KANOTIFY_KIND=INSTANCE\n", "KANOTIFY_STATE=MASTER\n",
                      "KANOTIFY_PREVIOUS=\n", "KANOTIFY_PRIORITY=120\n", "KANOTIFY_SEQUENCE=9\n",
                      "KANOTIFY_SOURCE=argv\n"})
        CHECK_THAT(env, Catch::Contains(line));
}

TEST_CASE("hooks: run as the configured user when root", "[hooks][security]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root to switch users");
        return;
    }
    TempDir tmp;
    config(tmp, "[hooks]\nuser = \"nobody\"\nany = [[\"/usr/bin/id\", \"-u\"]]\n");
    auto argv = base(tmp);
    for (auto w : {"INSTANCE", "VI_1", "MASTER", "1"})
        argv.emplace_back(w);
    REQUIRE(run(tmp, argv).status == 0);
    auto hooks = journal(tmp, "hook");
    REQUIRE(hooks.size() == 1);
    CHECK(hooks[0]["output"] == "65534\n");
}
