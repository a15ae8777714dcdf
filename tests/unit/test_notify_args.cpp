// SPDX-License-Identifier: GPL-2.0-or-later
// read_generic_notify() stands in for CLI11 on keepalived's generic notify
// form: wherever it answers, its answer must be CLI11's.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "notify_args.hpp"

using namespace kanotify::cli;

namespace {

struct Argv {
    explicit Argv(std::vector<std::string> words) : storage(std::move(words)) {
        storage.insert(storage.begin(), "kanotify");
        for (auto& w : storage)
            pointers.push_back(w.data());
        pointers.push_back(nullptr);
    }
    int argc() const { return static_cast<int>(storage.size()); }
    char** argv() { return pointers.data(); }
    std::vector<std::string> storage;
    std::vector<char*> pointers;
};

// CLI11's reading, or nullopt when CLI11 refuses the arguments (or stops
// at --help or --version).
std::optional<NotifyArgs> cli11(const std::vector<std::string>& words) {
    Argv a(words);
    NotifyArgs args;
    CLI::App app{"test", "kanotify"};
    add_notify_options(app, args);
    try {
        app.parse(a.argc(), a.argv());
    } catch (const CLI::ParseError&) {
        return std::nullopt;
    }
    return args;
}

void require_same(const NotifyArgs& quick, const NotifyArgs& full) {
    CHECK(quick.global.config_path == full.global.config_path);
    CHECK(quick.global.state_dir == full.global.state_dir);
    CHECK(quick.global.log_file == full.global.log_file);
    CHECK(quick.global.debug == full.global.debug);
    CHECK(quick.global.log_target == full.global.log_target);
    CHECK(quick.global.socket_path == full.global.socket_path);
    CHECK(quick.flags.instance == full.flags.instance);
    CHECK(quick.flags.group == full.flags.group);
    CHECK(quick.flags.state == full.flags.state);
    CHECK(quick.flags.priority == full.flags.priority);
    CHECK(quick.words == full.words);
    CHECK(quick.sequence == full.sequence);
    CHECK(quick.netns == full.netns);
    CHECK(quick.interface == full.interface);
    CHECK(quick.router_id == full.router_id);
    CHECK(quick.addresses == full.addresses);
}

std::optional<NotifyArgs> quick(const std::vector<std::string>& words) {
    Argv a(words);
    return read_generic_notify(a.argc(), a.argv());
}

}  // namespace

TEST_CASE("notify arguments: the quick reading of keepalived's form is CLI11's", "[cli]") {
    const std::vector<std::vector<std::string>> read_quickly = {
        {"INSTANCE", "VI_1", "MASTER", "100"},
        {"GROUP", "G1", "BACKUP", "0"},
        {"INSTANCE", "router-1b2c", "FAULT", "255"},
        {"--config", "/etc/kanotify/kanotify.toml", "INSTANCE", "VI_1", "STOP", "100"},
        {"--config", "/etc/k.toml", "--state-dir", "/var/lib/k", "--log-target", "stderr", "INSTANCE", "VI_1",
         "MASTER", "100"},
        {"--log-target", "journal", "--debug", "--socket", "/run/agent.sock", "INSTANCE", "VI_1", "BACKUP", "50"},
        {"--log-file", "/var/log/k.log", "--log-target", "auto", "INSTANCE", "VI_1", "DELETED", "0"},
        {"--debug", "INSTANCE", "a=b", "MASTER", "100"},
        {"--config", "", "INSTANCE", "VI_1", "MASTER", "100"},
        {"INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", "100"},
        {"instance", "VI 1", "master", "x"},  // wrong words are the word parser's business
    };
    for (const auto& words : read_quickly) {
        INFO(fmt::format("{}", fmt::join(words, " ")));
        auto mine = quick(words);
        REQUIRE(mine);
        auto theirs = cli11(words);
        REQUIRE(theirs);
        require_same(*mine, *theirs);
    }
}

TEST_CASE("notify arguments: anything but keepalived's form is left to CLI11", "[cli]") {
    const std::vector<std::vector<std::string>> left = {
        {},
        {"INSTANCE", "VI_1", "MASTER"},
        {"INSTANCE", "VI_1", "MASTER", "100", "extra"},
        {"--help"},
        {"--version", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--config=/etc/k.toml", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--config", "/a", "--config", "/b", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--debug", "--debug", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--log-target", "syslog", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--log-target", "stderr", "--log-target", "auto", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--state-dir", "-x", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--config", "INSTANCE", "VI_1", "MASTER", "100"},
        {"INSTANCE", "-VI_1", "MASTER", "100"},
        {"INSTANCE", "VI_1", "MASTER", "-1"},
        {"INSTANCE", "[VI_1,VI_2]", "MASTER", "100"},  // CLI11 makes two words of it (found by fuzzing)
        {"[]", "", "", ""},
        {"--", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--state", "master", "--instance", "VI_1"},
        {"--state", "master", "--instance", "VI_1", "--priority", "100"},
        {"--address", "192.0.2.1/32", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--sequence", "7", "INSTANCE", "VI_1", "MASTER", "100"},
        {"-c", "/etc/k.toml", "INSTANCE", "VI_1", "MASTER", "100"},
        {"--unknown", "x", "INSTANCE", "VI_1", "MASTER", "100"},
    };
    for (const auto& words : left) {
        INFO(fmt::format("{}", fmt::join(words, " ")));
        CHECK_FALSE(quick(words));
    }
    // And where CLI11 reads one of them, it still does.
    auto explicit_form = cli11({"--state", "master", "--instance", "VI_1", "--priority", "100"});
    REQUIRE(explicit_form);
    CHECK(explicit_form->flags.state == "master");
    CHECK(explicit_form->words.empty());
    CHECK_FALSE(cli11({"--log-target", "syslog", "INSTANCE", "VI_1", "MASTER", "100"}));
}
