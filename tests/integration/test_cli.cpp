// SPDX-License-Identifier: GPL-2.0-or-later
// The kanotify binary as keepalived runs it: arguments, exit codes, files.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "process.hpp"

using namespace kanotify::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> invoke(const TempDir& tmp, std::vector<std::string> args) {
    std::vector<std::string> argv{KANOTIFY_BINARY, "--config", tmp.str("kanotify.toml"), "--state-dir",
                                  tmp.str("state")};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

TempDir& with_config(TempDir& tmp) {
    write_file(tmp.path() / "kanotify.toml", "");
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    return tmp;
}

}  // namespace

TEST_CASE("argv mode: generic and explicit forms record the state", "[cli]") {
    TempDir tmp;
    with_config(tmp);
    auto r = run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "MASTER", "100"}));
    CHECK(r.status == 0);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    r = run(tmp, invoke(tmp, {"--state", "backup", "--instance", "VI_1"}));
    CHECK(r.status == 0);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    r = run(tmp, invoke(tmp, {"--state", "master_rx_lower_pri", "--instance", "VI_1"}));
    CHECK(r.status == 0);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    r = run(tmp, invoke(tmp, {"GROUP", "G1", "FAULT", "0"}));
    CHECK(r.status == 0);
    CHECK(read_file(tmp.path() / "state/group/G1.state") == "FAULT\n");

    r = run(tmp, invoke(tmp, {"history", "--json"}));  // not a subcommand here: words after options
    CHECK(r.status == 64);
    r = run(tmp, {KANOTIFY_BINARY, "history", "--json", "--state-dir", tmp.str("state"), "--config",
                  tmp.str("kanotify.toml")});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("\"state\":\"MASTER_RX_LOWER_PRI\""));
    r = run(tmp, {KANOTIFY_BINARY, "status", "--state-dir", tmp.str("state"), "--config", tmp.str("kanotify.toml")});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("VI_1"));
    CHECK_THAT(r.out, Catch::Contains("BACKUP"));
}

TEST_CASE("argv mode: every rejection says why and exits 64 or 65", "[cli]") {
    TempDir tmp;
    with_config(tmp);
    REQUIRE(run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "BACKUP", "50"})).status == 0);
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string says;
    };
    for (const auto& c : std::vector<Case>{
             {{}, 64, "nothing to record"},
             {{"INSTANCE", "VI_1", "MASTER"}, 64, "4 words"},
             {{"--bogus", "INSTANCE", "VI_1", "MASTER", "1"}, 64, "--bogus"},
             {{"--state", "master"}, 64, "--instance"},
             {{"--state", "master", "--instance", "VI_1", "INSTANCE", "VI_1", "MASTER", "1"}, 64, "not both"},
             {{"INSTANCE", "VI_1", "MASTER", "256"}, 65, "priority \"256\""},
             {{"INSTANCE", "VI_1", "MASTER", "-1"}, 65, "priority \"-1\""},
             {{"INSTANCE", "VI_1", "LEADER", "1"}, 65, "unknown state"},
             {{"INSTANCE", "../../etc/x", "MASTER", "1"}, 65, "contains \"/\""},
             {{"INSTANCE", "a;rm -rf /", "MASTER", "1"}, 65, "contains"},
             {{"INSTANCE", std::string(10240, 'n'), "MASTER", "1"}, 65, "10240 bytes"},
             {{"--state", "primary", "--instance", "VI_1"}, 65, "unknown state"},
         }) {
        INFO(c.args.size() << " args, expecting " << c.status);
        auto r = run(tmp, invoke(tmp, c.args));
        CHECK(r.status == c.status);
        CHECK_THAT(r.err, Catch::Contains(c.says));
    }
    // Nothing already recorded was lost, and the refusals were journalled.
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    auto history = run(tmp, {KANOTIFY_BINARY, "history", "-n", "0", "--json", "--state-dir", tmp.str("state"),
                             "--config", tmp.str("kanotify.toml")});
    CHECK(history.status == 0);
    CHECK_THAT(history.out, Catch::Contains("\"type\":\"rejected\""));
    CHECK_THAT(history.out, Catch::Contains("priority \\\"256\\\""));
}

TEST_CASE("argv mode: configuration problems exit 64 with the reason", "[cli]") {
    TempDir tmp;
    write_file(tmp.path() / "kanotify.toml", "[garp]\ncuont = 3\n");
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    auto r = run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "MASTER", "1"}));
    CHECK(r.status == 64);
    CHECK_THAT(r.err, Catch::Contains("\"cuont\" is not a known setting"));
    CHECK_FALSE(fs::exists(tmp.path() / "state/VI_1.state"));

    r = run(tmp, {KANOTIFY_BINARY, "--config", tmp.str("missing.toml"), "INSTANCE", "VI_1", "MASTER", "1"});
    CHECK(r.status == 64);
    CHECK_THAT(r.err, Catch::Contains("missing.toml"));

    if (::geteuid() == 0) {
        write_file(tmp.path() / "kanotify.toml", "");
        ::chmod(tmp.str("kanotify.toml").c_str(), 0666);
        r = run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "MASTER", "1"}));
        CHECK(r.status == 64);
        CHECK_THAT(r.err, Catch::Contains("refusing configuration"));
    }
}

TEST_CASE("argv mode: an unusable state directory exits 71 and says so", "[cli]") {
    TempDir tmp;
    with_config(tmp);
    write_file(tmp.path() / "state", "a file, not a directory");
    auto r = run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "MASTER", "1"}));
    CHECK(r.status == 71);
    CHECK_THAT(r.err, Catch::Contains("state directory"));
}
