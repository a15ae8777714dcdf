// SPDX-License-Identifier: GPL-2.0-or-later
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "journal.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;
using kanotify::test::write_file;
namespace fs = std::filesystem;

namespace {

std::string record(int writer, int n) {
    return fmt::format(R"({{"writer":{},"n":{},"pad":"{}"}})", writer, n, std::string(40, 'x'));
}

}  // namespace

TEST_CASE("journal: appended lines come back in order", "[journal]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    Journal journal(*store, JournalSettings{});
    REQUIRE(journal.append({record(0, 1), record(0, 2)}));
    REQUIRE(journal.append({record(0, 3)}));
    auto all = journal.tail(0);
    REQUIRE(all);
    REQUIRE(all->lines.size() == 3);
    CHECK(all->lines[0] == record(0, 1));
    CHECK(all->lines[2] == record(0, 3));
    auto last = journal.tail(2);
    REQUIRE(last);
    REQUIRE(last->lines.size() == 2);
    CHECK(last->lines[0] == record(0, 2));
}

TEST_CASE("journal: rotation under concurrent writers keeps every line, synced or not", "[journal][rotation]") {
    TempDir tmp;
    auto dir = tmp.str("state");
    JournalSettings settings;
    settings.max_bytes = 4096;  // about 60 lines per file: many rotations
    settings.keep = 1000;       // the cap is large enough to keep all of them
    constexpr int writers = 4;
    constexpr int per_writer = 300;
    {
        auto store = StateStore::open(dir);
        REQUIRE(store);
    }
    std::vector<pid_t> children;
    for (int w = 0; w < writers; ++w) {
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            auto store = StateStore::open(dir);
            if (!store)
                ::_exit(2);
            Journal journal(*store, settings);
            // Every other line unsynced (as delivery outcomes are): order
            // and rotation must not depend on it.
            for (int n = 0; n < per_writer; ++n)
                if (!journal.append({record(w, n)}, n % 2 ? Durability::with_next_sync : Durability::synced))
                    ::_exit(1);
            ::_exit(0);
        }
        children.push_back(child);
    }
    for (auto child : children) {
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    auto store = StateStore::open(dir);
    REQUIRE(store);
    Journal journal(*store, settings);
    auto all = journal.tail(0);
    REQUIRE(all);
    CHECK(all->torn == 0);
    REQUIRE(all->lines.size() == writers * per_writer);
    CHECK(fs::exists(fs::path(dir) / "journal.jsonl.1"));
    // Every line once, and each writer's lines in the order it wrote them.
    std::set<std::string> unique(all->lines.begin(), all->lines.end());
    CHECK(unique.size() == all->lines.size());
    std::vector<int> next(writers, 0);
    for (const auto& line : all->lines) {
        int w = line[10] - '0';
        REQUIRE(w >= 0);
        REQUIRE(w < writers);
        CHECK(line == record(w, next[static_cast<std::size_t>(w)]++));
    }
}

TEST_CASE("journal: the oldest rotated file goes beyond the cap", "[journal][rotation]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    JournalSettings settings;
    settings.max_bytes = 4096;
    settings.keep = 2;
    Journal journal(*store, settings);
    for (int n = 0; n < 1000; ++n)
        REQUIRE(journal.append({record(0, n)}));
    CHECK(fs::exists(tmp.path() / "state/journal.jsonl.2"));
    CHECK_FALSE(fs::exists(tmp.path() / "state/journal.jsonl.3"));
    auto all = journal.tail(0);
    REQUIRE(all);
    // What is kept is the newest lines, contiguous and in order.
    REQUIRE_FALSE(all->lines.empty());
    CHECK(all->lines.back() == record(0, 999));
    auto first = static_cast<int>(1000 - all->lines.size());
    for (std::size_t i = 0; i < all->lines.size(); ++i)
        CHECK(all->lines[i] == record(0, first + static_cast<int>(i)));
}

TEST_CASE("journal: a torn last line is terminated, not glued to the next record", "[journal][crash]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    Journal journal(*store, JournalSettings{});
    REQUIRE(journal.append({record(0, 1)}));
    {
        auto text = read_file(tmp.path() / "state/journal.jsonl");
        write_file(tmp.path() / "state/journal.jsonl", text + R"({"writer":0,"n":2,"pa)");
    }
    REQUIRE(journal.append({record(0, 3)}));
    auto all = journal.tail(0);
    REQUIRE(all);
    CHECK(all->torn == 1);
    REQUIRE(all->lines.size() == 3);
    CHECK(all->lines[0] == record(0, 1));
    CHECK_THAT(all->lines[1], Catch::Contains("\"type\":\"repair\""));  // the repair is journalled
    CHECK(all->lines[2] == record(0, 3));
}

TEST_CASE("journal: a symlink planted at the journal path is not followed", "[journal][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    write_file(tmp.path() / "victim", "precious\n");
    fs::create_symlink(tmp.path() / "victim", tmp.path() / "state/journal.jsonl");
    Journal journal(*store, JournalSettings{});
    CHECK_FALSE(journal.append({record(0, 1)}));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
}

TEST_CASE("journal: a hard link planted at the journal path is refused, its target untouched", "[journal][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    write_file(tmp.path() / "victim", "precious\n");
    fs::create_hard_link(tmp.path() / "victim", tmp.path() / "state/journal.jsonl");
    Journal journal(*store, JournalSettings{});
    auto appended = journal.append({record(0, 1)});
    REQUIRE_FALSE(appended);
    CHECK_THAT(appended.error().message, Catch::Contains("links"));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
}
