// SPDX-License-Identifier: GPL-2.0-or-later
// The kanotify binary as keepalived runs it: arguments, exit codes, files.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>

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

namespace {

std::string history_json(const TempDir& tmp) {
    auto r = run(tmp, {KANOTIFY_BINARY, "history", "-n", "0", "--json", "--state-dir", tmp.str("state"), "--config",
                       tmp.str("kanotify.toml")});
    REQUIRE(r.status == 0);
    return r.out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

}  // namespace

TEST_CASE("argv mode: ../, /, newline, shell metacharacters and 10 KiB in every name and flag are refused, "
          "nothing recorded is lost",
          "[cli][security]") {
    // (argv cannot carry a NUL: the kernel ends the word there. The parser's
    // handling of one is in "generic notify words: malformed input is
    // rejected with the reason".)
    TempDir tmp;
    with_config(tmp);
    REQUIRE(run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "BACKUP", "50"})).status == 0);
    REQUIRE(run(tmp, invoke(tmp, {"GROUP", "G1", "MASTER", "0"})).status == 0);
    auto before = history_json(tmp);
    REQUIRE(count_of(before, "\"type\":\"transition\"") == 2);

    const std::vector<std::string> bad_names{"../../etc/cron.d/x", "..", "a/b", "/etc/passwd", "VI\n1",
                                             "VI_1\nINSTANCE VI_2 MASTER 1", "a;reboot", "$(reboot)", "`id`",
                                             "a|b", "a b", std::string(10240, 'n')};
    std::vector<std::vector<std::string>> attempts;
    for (const auto& name : bad_names) {
        attempts.push_back({"INSTANCE", name, "MASTER", "100"});
        attempts.push_back({"GROUP", name, "MASTER", "0"});
        attempts.push_back({"--state", "master", "--instance", name});
        attempts.push_back({"--state", "master", "--group", name});
        attempts.push_back({"--router-id", name, "INSTANCE", "VI_1", "MASTER", "100"});
    }
    const std::vector<std::string> bad_netns{"../x", "..", "a/b", "/run/netns/../../etc/x", "q\nx",
                                             "/run/netns/q\nforged", "q;reboot", "$(reboot)",
                                             std::string(10240, 'n')};
    for (const auto& netns : bad_netns)
        attempts.push_back({"--namespace", netns, "INSTANCE", "VI_1", "MASTER", "100"});
    const std::vector<std::string> bad_interfaces{"../etc", "..", "a/b", "eth\n0", "eth 0", std::string(10240, 'n')};
    for (const auto& interface : bad_interfaces)
        attempts.push_back({"--interface", interface, "INSTANCE", "VI_1", "MASTER", "100"});
    const std::vector<std::string> bad_addresses{"../10.0.0.1", "10.0.0.1/../24", "10.0.0.1\n", "10.0.0.1;reboot",
                                                 "$(reboot)", "10.0.0.1/33", std::string(10240, '1')};
    for (const auto& address : bad_addresses)
        attempts.push_back({"--address", address, "INSTANCE", "VI_1", "MASTER", "100"});

    for (const auto& args : attempts) {
        INFO(args[0] << " " << args[1].substr(0, 40));
        auto r = run(tmp, invoke(tmp, args));
        CHECK(r.status == 65);
        // One line, saying why, never the value's own line breaks.
        CHECK_FALSE(r.err.empty());
        CHECK(count_of(r.err, "\n") == 1);
        CHECK(r.err.size() < 600);
    }
    // Nothing recorded before was lost or changed, nothing was created
    // outside the state directory, and every refusal was journalled.
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    CHECK(read_file(tmp.path() / "state/group/G1.state") == "MASTER\n");
    auto after = history_json(tmp);
    CHECK(after.substr(0, before.size()) == before);
    CHECK(count_of(after, "\"type\":\"transition\"") == 2);
    CHECK(count_of(after, "\"type\":\"rejected\"") == attempts.size());
    std::size_t files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(tmp.path() / "state")) {
        auto name = entry.path().filename().string();
        if (entry.is_regular_file() && name.ends_with(".state")) {
            CHECK((name == "VI_1.state" || name == "G1.state"));
            ++files;
        }
    }
    CHECK(files == 2);
    CHECK_FALSE(fs::exists(tmp.path() / "etc"));
    CHECK_FALSE(fs::exists("/etc/cron.d/x.state"));
}

TEST_CASE("argv mode: a configuration others can write is refused as root, nothing recorded is lost",
          "[cli][security]") {
    if (::geteuid() != 0) {
        WARN("skipped: only a process running as root refuses a configuration it does not own");
        return;
    }
    TempDir tmp;
    with_config(tmp);
    REQUIRE(run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "BACKUP", "50"})).status == 0);
    auto before = history_json(tmp);
    // A hook run as root is what a writable configuration would give away.
    write_file(tmp.path() / "kanotify.toml", "[hooks]\nmaster = [[\"/bin/touch\", \"" + tmp.str("owned") + "\"]]\n");
    for (auto [mode, owner] : {std::pair{0666, 0}, std::pair{0620, 0}, std::pair{0644, 65534}}) {
        INFO("mode " << std::oct << mode << std::dec << ", owner " << owner);
        REQUIRE(::chmod(tmp.str("kanotify.toml").c_str(), static_cast<mode_t>(mode)) == 0);
        REQUIRE(::chown(tmp.str("kanotify.toml").c_str(), static_cast<uid_t>(owner), 0) == 0);
        auto r = run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "MASTER", "100"}));
        CHECK(r.status == 64);
        CHECK_THAT(r.err, Catch::Contains("refusing configuration"));
        auto fifo = run(tmp, {KANOTIFY_BINARY, "fifo", "--config", tmp.str("kanotify.toml"), "--state-dir",
                              tmp.str("state"), tmp.str("no.fifo")});
        CHECK(fifo.status == 64);
        CHECK_THAT(fifo.err, Catch::Contains("refusing configuration"));
    }
    CHECK_FALSE(fs::exists(tmp.path() / "owned"));  // the hook never ran
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    REQUIRE(::chmod(tmp.str("kanotify.toml").c_str(), 0644) == 0);
    REQUIRE(::chown(tmp.str("kanotify.toml").c_str(), 0, 0) == 0);
    CHECK(history_json(tmp).substr(0, before.size()) == before);
}

TEST_CASE("argv mode: a symlink or hard link planted at the journal is refused, the state still recorded, "
          "its target untouched",
          "[cli][security]") {
    TempDir tmp;
    with_config(tmp);
    REQUIRE(run(tmp, invoke(tmp, {"INSTANCE", "VI_0", "BACKUP", "50"})).status == 0);
    write_file(tmp.path() / "victim", "precious\n");
    auto journal = tmp.path() / "state/journal.jsonl";
    fs::rename(journal, tmp.path() / "saved.jsonl");
    struct Case {
        const char* what;
        std::function<void()> plant;
        const char* says;
    };
    std::vector<Case> cases{
        {"hard link", [&] { fs::create_hard_link(tmp.path() / "victim", journal); }, "2 links"},
        {"symlink", [&] { fs::create_symlink(tmp.path() / "victim", journal); }, "symbolic links"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        c.plant();
        auto r = run(tmp, invoke(tmp, {"--log-target", "stderr", "INSTANCE", "VI_1", "MASTER", "100"}));
        // Recorded first: the state file is the fact, the journal its history.
        CHECK(r.status == 71);
        CHECK_THAT(r.err, Catch::Contains(c.says));
        CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
        CHECK(read_file(tmp.path() / "victim") == "precious\n");
        fs::remove(journal);
        fs::remove(tmp.path() / "state/VI_1.state");
    }
    CHECK(fs::hard_link_count(tmp.path() / "victim") == 1);
    CHECK(read_file(tmp.path() / "state/VI_0.state") == "BACKUP\n");
    // Once the operator puts the journal back, it is appended to as before.
    fs::rename(tmp.path() / "saved.jsonl", journal);
    auto before = read_file(journal);
    REQUIRE(run(tmp, invoke(tmp, {"INSTANCE", "VI_1", "BACKUP", "100"})).status == 0);
    auto after = read_file(journal);
    CHECK(after.substr(0, before.size()) == before);
    CHECK(after.size() > before.size());
}
