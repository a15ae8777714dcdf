// SPDX-License-Identifier: GPL-2.0-or-later
// Pending deliveries (<state_dir>/pending/<sink>/instance:NAME) under
// attack: symlinks, hard links and FIFOs planted at the directories, at an
// entry's name and at the temporary name. Nothing is written or read
// through them, and what was already recorded (state files, the journal,
// other owed deliveries) stays as it was.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <optional>

#include "journal.hpp"
#include "pending.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;
using kanotify::test::write_file;
namespace fs = std::filesystem;

namespace {

Delivery delivery_of(const std::string& name, State state) {
    Delivery d;
    d.event.name = name;
    d.event.state = state;
    d.event.priority = 100;
    d.event.sequence = 7;
    d.event.time_usec = 1700000000000000;
    d.router_id = "r-" + name;
    return d;
}

// What an attack must leave alone: a state file and a journal line
// recorded before it.
struct Recorded {
    TempDir& tmp;
    StateStore& store;
    Journal journal{store, JournalSettings{}};

    Recorded(TempDir& t, StateStore& s) : tmp(t), store(s) {
        REQUIRE(store.write(Kind::instance, "VI_0", State::master));
        REQUIRE(journal.append({R"({"type":"transition","name":"VI_0"})"}));
    }
    void check_intact() const {
        CHECK(read_file(tmp.path() / "state/VI_0.state") == "MASTER\n");
        auto lines = journal.tail(0);
        REQUIRE(lines);
        REQUIRE(lines->lines.size() == 1);
        CHECK(lines->lines[0] == R"({"type":"transition","name":"VI_0"})");
    }
};

std::size_t entries_in(const fs::path& dir) {
    std::size_t n = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        (void)entry;
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("pending store: an entry is written, listed, replaced by a newer one and removed", "[pending]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    REQUIRE(pending->put(delivery_of("VI_1", State::master)));
    REQUIRE(pending->put(delivery_of("VI_1", State::backup)));
    auto listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).file == "instance:VI_1");
    CHECK(listed->at(0).delivery.event.state == State::backup);
    CHECK(entries_in(tmp.path() / "state/pending/socket") == 1);  // no temporary left behind
    REQUIRE(pending->remove(Kind::instance, "VI_1"));
    // Kept as the instance's spare, which nothing lists.
    CHECK(entries_in(tmp.path() / "state/pending/socket") == 1);  // .spare/
    CHECK(fs::exists(tmp.path() / "state/pending/socket/.spare/instance:VI_1"));
    listed = pending->list();
    REQUIRE(listed);
    CHECK(listed->empty());
    // The next entry reuses it: the same inode, renamed back.
    struct stat spare {};
    REQUIRE(::stat((tmp.path() / "state/pending/socket/.spare/instance:VI_1").c_str(), &spare) == 0);
    REQUIRE(pending->put(delivery_of("VI_1", State::fault)));
    struct stat entry {};
    REQUIRE(::stat((tmp.path() / "state/pending/socket/instance:VI_1").c_str(), &entry) == 0);
    CHECK(entry.st_ino == spare.st_ino);
    CHECK((entry.st_mode & 07777) == 0600);
    listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).delivery.event.state == State::fault);  // the old content is gone
    // With a spare already there, a removed entry is simply deleted.
    REQUIRE(pending->remove(Kind::instance, "VI_1"));
    REQUIRE(pending->put(delivery_of("VI_2", State::master)));
    write_file(tmp.path() / "state/pending/socket/.spare/instance:VI_2", "");
    REQUIRE(pending->remove(Kind::instance, "VI_2"));
    CHECK_FALSE(fs::exists(tmp.path() / "state/pending/socket/instance:VI_2"));
    CHECK(entries_in(tmp.path() / "state/pending/socket/.spare") == 2);
}

TEST_CASE("pending store: a spare longer than the new entry is cut to it", "[pending]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    REQUIRE(pending->put(delivery_of("VI_1", State::master)));
    REQUIRE(pending->remove(Kind::instance, "VI_1"));
    // The spare is written over, not emptied first: what the old content
    // had beyond the new one's length must not survive.
    auto spare = tmp.path() / "state/pending/socket/.spare/instance:VI_1";
    write_file(spare, std::string(5000, 'x'));
    REQUIRE(pending->put(delivery_of("VI_1", State::backup)));
    auto entry = tmp.path() / "state/pending/socket/instance:VI_1";
    auto text = read_file(entry);
    CHECK(text.size() < 1000);
    CHECK(text.find('x' + std::string(10, 'x')) == std::string::npos);
    std::size_t bad = 0;
    auto listed = pending->list(&bad);
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().delivery.event.state == State::backup);
    CHECK(bad == 0);
}

TEST_CASE("pending store: entries the caller does not want are passed over unread", "[pending]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    REQUIRE(pending->put(delivery_of("VI_1", State::master)));
    REQUIRE(pending->put(delivery_of("VI_2", State::backup)));
    auto dir = tmp.path() / "state/pending/socket";
    write_file(dir / "instance:VI_3", "not JSON");  // unreadable, but not wanted: never read
    write_file(dir / "bogus", "{}");                 // no instance in its name
    std::vector<std::string> asked;
    std::size_t bad = 0;
    auto listed = pending->list(&bad, [&](Kind kind, const std::string& name) {
        CHECK(kind == Kind::instance);
        asked.push_back(name);
        return name == "VI_2";
    });
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().delivery.event.name == "VI_2");
    std::sort(asked.begin(), asked.end());
    CHECK(asked == std::vector<std::string>{"VI_1", "VI_2", "VI_3"});
    CHECK(bad == 1);  // "bogus"
}

TEST_CASE("pending store: the spare is reused under keepalived's umask too", "[pending]") {
    // keepalived runs notify scripts with a umask that clears execute bits:
    // a spare directory made with it would refuse every later rename.
    TempDir tmp;
    auto old_mask = ::umask(0177);
    auto store = StateStore::open(tmp.str("state"));
    std::optional<PendingStore> pending;
    if (store)
        if (auto opened = PendingStore::open(*store, "socket"))
            pending.emplace(std::move(*opened));
    bool ok = pending && pending->put(delivery_of("VI_1", State::master)) &&
              pending->remove(Kind::instance, "VI_1") && pending->put(delivery_of("VI_1", State::backup));
    ::umask(old_mask);
    REQUIRE(ok);
    auto spare_dir = tmp.path() / "state/pending/socket/.spare";
    REQUIRE(fs::is_directory(spare_dir));
    struct stat st {};
    REQUIRE(::stat(spare_dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(pending->remove(Kind::instance, "VI_1"));
    CHECK(fs::exists(spare_dir / "instance:VI_1"));  // kept, not deleted
}

TEST_CASE("pending store: a spare that is a planted link or FIFO is never written to", "[pending][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    write_file(tmp.path() / "victim", "precious\n");
    auto dir = tmp.path() / "state/pending/socket/.spare";
    fs::create_directory(dir);
    fs::create_hard_link(tmp.path() / "victim", dir / "instance:VI_1");
    fs::create_symlink(tmp.path() / "victim", dir / "instance:VI_2");
    REQUIRE(::mkfifo((dir / "instance:VI_3").c_str(), 0600) == 0);
    for (const char* name : {"VI_1", "VI_2", "VI_3"}) {
        INFO(name);
        REQUIRE(pending->put(delivery_of(name, State::master)));
        auto listed = pending->list();
        REQUIRE(listed);
        CHECK(std::any_of(listed->begin(), listed->end(),
                          [&](const PendingEntry& e) { return e.delivery.event.name == name; }));
    }
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(fs::hard_link_count(tmp.path() / "victim") == 2);
    CHECK(fs::is_symlink(dir / "instance:VI_2"));
    CHECK(fs::is_fifo(dir / "instance:VI_3"));
}

TEST_CASE("pending store: a symlink planted at pending or at pending/SINK is refused, its target untouched",
          "[pending][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    Recorded recorded(tmp, *store);
    fs::create_directory(tmp.path() / "elsewhere");

    fs::create_directory_symlink(tmp.path() / "elsewhere", tmp.path() / "state/pending");
    auto via_top = PendingStore::open(*store, "socket");
    REQUIRE_FALSE(via_top);
    CHECK_THAT(via_top.error().message, Catch::Contains("symlink"));
    CHECK(entries_in(tmp.path() / "elsewhere") == 0);

    fs::remove(tmp.path() / "state/pending");
    fs::create_directory(tmp.path() / "state/pending");
    fs::create_directory_symlink(tmp.path() / "elsewhere", tmp.path() / "state/pending/socket");
    auto via_sink = PendingStore::open(*store, "socket");
    REQUIRE_FALSE(via_sink);
    CHECK_THAT(via_sink.error().message, Catch::Contains("pending/socket"));
    CHECK(entries_in(tmp.path() / "elsewhere") == 0);
    CHECK(fs::is_symlink(tmp.path() / "state/pending/socket"));  // reported, not removed behind the operator's back
    recorded.check_intact();
}

TEST_CASE("pending store: a symlink planted at an entry's name is neither read nor written through",
          "[pending][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    Recorded recorded(tmp, *store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    REQUIRE(pending->put(delivery_of("VI_2", State::backup)));  // owed before the attack
    auto dir = tmp.path() / "state/pending/socket";

    // The target holds a well-formed entry: following the link would list it.
    auto forged = delivery_json(delivery_of("VI_1", State::master));
    write_file(tmp.path() / "victim", forged);
    fs::create_symlink(tmp.path() / "victim", dir / "instance:VI_1");
    // A FIFO nobody writes must not block the listing either.
    REQUIRE(::mkfifo((dir / "instance:VI_3").c_str(), 0600) == 0);
    std::size_t unreadable = 0;
    auto listed = pending->list(&unreadable);
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).file == "instance:VI_2");
    CHECK(unreadable == 2);

    // Writing replaces the link with a file of our own.
    REQUIRE(pending->put(delivery_of("VI_1", State::backup)));
    CHECK(read_file(tmp.path() / "victim") == forged);
    CHECK_FALSE(fs::is_symlink(dir / "instance:VI_1"));
    listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 2);

    // Removing a link removes the link, never its target.
    fs::remove(dir / "instance:VI_1");
    fs::create_symlink(tmp.path() / "victim", dir / "instance:VI_1");
    REQUIRE(pending->remove(Kind::instance, "VI_1"));
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "instance:VI_1")));
    CHECK(read_file(tmp.path() / "victim") == forged);

    // What was owed before is still owed, and still says what it said.
    auto owed = read_small_file(pending->dir_fd(), "instance:VI_2", 8192);
    REQUIRE(owed);
    REQUIRE(*owed);
    auto parsed = parse_delivery_json(**owed);
    REQUIRE(parsed);
    CHECK(parsed->event.state == State::backup);
    recorded.check_intact();
}

TEST_CASE("pending store: a hard link planted at an entry's name is replaced, its target untouched",
          "[pending][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    Recorded recorded(tmp, *store);
    auto pending = PendingStore::open(*store, "dbus");
    REQUIRE(pending);
    write_file(tmp.path() / "victim", "precious\n");
    fs::create_hard_link(tmp.path() / "victim", tmp.path() / "state/pending/dbus/instance:VI_1");
    REQUIRE(pending->put(delivery_of("VI_1", State::master)));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(fs::hard_link_count(tmp.path() / "victim") == 1);
    auto listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).delivery.event.state == State::master);
    recorded.check_intact();
}

TEST_CASE("pending store: a symlink planted at the temporary name is not followed", "[pending][security]") {
    TempDir tmp;
    write_file(tmp.path() / "victim", "precious\n");
    int calls = 0;
    StoreHooks hooks;
    hooks.temp_suffix = [&calls] { return ++calls == 1 ? std::string("predicted") : std::string("next"); };
    auto store = StateStore::open(tmp.str("state"), hooks);
    REQUIRE(store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    auto planted = tmp.path() / "state/pending/socket/.instance:VI_1.tmp-predicted";
    fs::create_symlink(tmp.path() / "victim", planted);
    REQUIRE(pending->put(delivery_of("VI_1", State::master)));
    CHECK(calls == 2);  // the planted name was skipped, the next one used
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(fs::is_symlink(planted));
    auto listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).delivery.event.state == State::master);

    // Every name taken: a clear error, the victim still untouched.
    calls = 0;
    hooks.temp_suffix = [] { return std::string("predicted"); };
    auto stuck_store = StateStore::open(tmp.str("state"), hooks);
    REQUIRE(stuck_store);
    auto stuck = PendingStore::open(*stuck_store, "socket");
    REQUIRE(stuck);
    auto refused = stuck->put(delivery_of("VI_1", State::backup));
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::Contains("temporary name"));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).delivery.event.state == State::master);  // the entry owed before is intact
}

TEST_CASE("pending deliveries: a temporary left by a killed writer is removed once its instance lock is free",
          "[pending][crash]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto pending = PendingStore::open(*store, "socket");
    REQUIRE(pending);
    REQUIRE(pending->put(delivery_of("VI_1", State::master)));
    const auto dir = tmp.path() / "state/pending/socket";
    // What a writer SIGKILLed between open() and rename() leaves, for an
    // instance nobody works on, and for one whose writer is still at it.
    write_file(dir / ".instance:VI_2.tmp-0123456789abcdef", "");
    write_file(dir / ".instance:VI_3.tmp-fedcba9876543210", R"({"partial)");
    UniqueFd busy(::openat(store->locks_fd(), "instance:VI_3", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    REQUIRE(busy);
    REQUIRE(::flock(busy.get(), LOCK_EX) == 0);
    // flock() locks belong to the open file description: the sweep opens
    // the lock file anew, so the lock held here counts as another writer's.
    auto removed = pending->remove_stale_temporaries();
    REQUIRE(removed);
    CHECK(*removed == 1);
    CHECK_FALSE(fs::exists(dir / ".instance:VI_2.tmp-0123456789abcdef"));
    CHECK(fs::exists(dir / ".instance:VI_3.tmp-fedcba9876543210"));
    // The owed entry itself is untouched and still listed.
    auto listed = pending->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().delivery.event.name == "VI_1");
    ::close(busy.release());
    removed = pending->remove_stale_temporaries();
    REQUIRE(removed);
    CHECK(*removed == 1);
    CHECK(entries_in(dir) == 1);
}
