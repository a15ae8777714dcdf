// SPDX-License-Identifier: GPL-2.0-or-later
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include <fmt/format.h>

#include "state_store.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;
using kanotify::test::write_file;
namespace fs = std::filesystem;

TEST_CASE("state store: write, read back, replace", "[store]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    CHECK(store->read(Kind::instance, "VI_1").value() == std::nullopt);
    REQUIRE(store->write(Kind::instance, "VI_1", State::master));
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    CHECK(store->read(Kind::instance, "VI_1").value() == State::backup);
    REQUIRE(store->write(Kind::group, "G1", State::fault));
    CHECK(read_file(tmp.path() / "state/group/G1.state") == "FAULT\n");
    auto listed = store->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 2);
    CHECK(listed->at(0).name == "VI_1");
    CHECK(listed->at(1).kind == Kind::group);
    // Nothing but the state files, their spares, the journal's place and
    // the lock directory.
    std::size_t entries = 0;
    for (const auto& entry : fs::directory_iterator(tmp.path() / "state")) {
        (void)entry;
        ++entries;
    }
    CHECK(entries == 4);  // VI_1.state, .VI_1.state.spare, group/, .locks/
}

TEST_CASE("state store: events are not states and names are validated", "[store]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    CHECK_FALSE(store->write(Kind::instance, "VI_1", State::master_rx_lower_pri));
    CHECK_FALSE(store->write(Kind::instance, "../escape", State::master));
    CHECK_FALSE(store->write(Kind::instance, "", State::master));
    CHECK_FALSE(fs::exists(tmp.path() / "escape.state"));
    CHECK_FALSE(StateStore::open("relative/dir"));
}

namespace {

// A child writes MASTER to VI_1 and is SIGKILLed at fault point `step`, as
// abruptly as a power cut for that process. True when it died that way.
bool killed_writing_master(const std::string& dir, const char* step) {
    pid_t child = ::fork();
    if (child < 0)
        return false;
    if (child == 0) {
        StoreHooks hooks;
        hooks.fault_point = [step](std::string_view at) {
            if (at == step)
                ::raise(SIGKILL);
        };
        auto store = StateStore::open(dir, hooks);
        if (store)
            (void)store->write(Kind::instance, "VI_1", State::master);
        ::_exit(3);  // not reached when the fault point fires
    }
    int status = 0;
    return ::waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace

TEST_CASE("state store: a crash between write and rename leaves the old state", "[store][crash]") {
    TempDir tmp;
    auto dir = tmp.str("state");
    {
        auto store = StateStore::open(dir);
        REQUIRE(store);
        REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    }
    for (const char* step : {"state:written", "state:synced", "state:before-rename"}) {
        INFO("killed at " << step);
        REQUIRE(killed_writing_master(dir, step));
        CHECK(read_file(fs::path(dir) / "VI_1.state") == "BACKUP\n");
    }
    // Each unfinished write was made to the spare, which stays the spare:
    // nothing was abandoned.
    auto store = StateStore::open(dir);
    REQUIRE(store);
    auto removed = store->remove_stale_temporaries();
    REQUIRE(removed);
    CHECK(*removed == 0);
    CHECK(read_file(fs::path(dir) / "VI_1.state") == "BACKUP\n");
    // Without a usable spare a write takes a temporary name; one abandoned
    // by a crash is found and removed, nothing else is.
    fs::remove(fs::path(dir) / ".VI_1.state.spare");
    fs::create_symlink("/nonexistent", fs::path(dir) / ".VI_1.state.spare");
    REQUIRE(killed_writing_master(dir, "state:written"));
    removed = store->remove_stale_temporaries();
    REQUIRE(removed);
    CHECK(*removed == 1);
    CHECK(fs::is_symlink(fs::path(dir) / ".VI_1.state.spare"));
    CHECK(read_file(fs::path(dir) / "VI_1.state") == "BACKUP\n");
    REQUIRE(store->write(Kind::instance, "VI_1", State::master));
    CHECK(read_file(fs::path(dir) / "VI_1.state") == "MASTER\n");
}

TEST_CASE("state store: a crash after the rename leaves the new state", "[store][crash]") {
    TempDir tmp;
    auto dir = tmp.str("state");
    REQUIRE(killed_writing_master(dir, "state:renamed"));
    CHECK(read_file(fs::path(dir) / "VI_1.state") == "MASTER\n");
}

TEST_CASE("state store: a symlink planted at the state path is replaced, not followed", "[store][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    write_file(tmp.path() / "victim", "precious\n");
    fs::create_symlink(tmp.path() / "victim", tmp.path() / "state/VI_1.state");
    // Reading does not follow it either: no state recorded yet.
    CHECK(store->read(Kind::instance, "VI_1").value() == std::nullopt);
    REQUIRE(store->write(Kind::instance, "VI_1", State::master));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK_FALSE(fs::is_symlink(tmp.path() / "state/VI_1.state"));
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
}

TEST_CASE("state store: a symlink planted at the temporary name is not followed", "[store][security]") {
    TempDir tmp;
    write_file(tmp.path() / "victim", "precious\n");
    int calls = 0;
    StoreHooks hooks;
    hooks.temp_suffix = [&calls] { return ++calls == 1 ? std::string("predicted") : std::string("next"); };
    auto store = StateStore::open(tmp.str("state"), hooks);
    REQUIRE(store);
    // Planted at the spare's name too, so that a temporary name is needed.
    fs::create_symlink(tmp.path() / "victim", tmp.path() / "state/.VI_1.state.spare");
    fs::create_symlink(tmp.path() / "victim", tmp.path() / "state/.VI_1.state.tmp-predicted");
    REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    CHECK(calls == 2);
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    CHECK(fs::is_symlink(tmp.path() / "state/.VI_1.state.tmp-predicted"));
    CHECK(fs::is_symlink(tmp.path() / "state/.VI_1.state.spare"));
}

TEST_CASE("state store: a spare is rewritten to the new state's exact length and mode", "[store]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto state_file = tmp.path() / "state/VI_1.state";
    auto spare = tmp.path() / "state/.VI_1.state.spare";
    REQUIRE(store->write(Kind::instance, "VI_1", State::deleted));
    REQUIRE(store->write(Kind::instance, "VI_1", State::master));
    // Shorter than what the spare held, then longer: no byte of the old
    // content survives either way.
    REQUIRE(read_file(spare) == "DELETED\n");
    REQUIRE(store->write(Kind::instance, "VI_1", State::stop));
    CHECK(read_file(state_file) == "STOP\n");
    REQUIRE(read_file(spare) == "MASTER\n");
    REQUIRE(store->write(Kind::instance, "VI_1", State::deleted));
    CHECK(read_file(state_file) == "DELETED\n");
    // A spare whose mode was changed behind our back is made readable again.
    REQUIRE(::chmod(spare.c_str(), 0600) == 0);
    write_file(spare, std::string(100, 'x'));
    REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    CHECK(read_file(state_file) == "BACKUP\n");
    struct stat st {};
    REQUIRE(::stat(state_file.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
    CHECK(store->read(Kind::instance, "VI_1").value() == State::backup);
}

TEST_CASE("state store: the replaced state file is kept as the spare, no new file per write", "[store]") {
    TempDir tmp;
    int calls = 0;
    StoreHooks hooks;
    hooks.temp_suffix = [&calls] { return fmt::format("n{}", ++calls); };
    auto store = StateStore::open(tmp.str("state"), hooks);
    REQUIRE(store);
    REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    REQUIRE(store->write(Kind::instance, "VI_1", State::master));
    auto spare = tmp.path() / "state/.VI_1.state.spare";
    REQUIRE(fs::exists(spare));
    CHECK(read_file(spare) == "BACKUP\n");  // what the exchange moved out
    struct stat before {};
    REQUIRE(::stat(spare.c_str(), &before) == 0);
    REQUIRE(store->write(Kind::instance, "VI_1", State::fault));
    struct stat state {};
    REQUIRE(::stat((tmp.path() / "state/VI_1.state").c_str(), &state) == 0);
    CHECK(state.st_ino == before.st_ino);  // the spare was rewritten and exchanged in
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "FAULT\n");
    CHECK(read_file(spare) == "MASTER\n");
    CHECK((state.st_mode & 07777) == 0644);
    CHECK(calls == 0);  // no temporary name was ever needed
    // The spare is not a state: nothing lists it.
    auto listed = store->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().name == "VI_1");

    // A spare that is not our plain single-link file is never written to.
    write_file(tmp.path() / "victim", "precious\n");
    fs::remove(spare);
    fs::create_hard_link(tmp.path() / "victim", spare);
    REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
    CHECK(calls == 1);
}

TEST_CASE("state store: the state directory itself must not be a symlink or world-writable", "[store][security]") {
    TempDir tmp;
    fs::create_directory(tmp.path() / "real");
    fs::create_directory_symlink(tmp.path() / "real", tmp.path() / "link");
    auto via_link = StateStore::open(tmp.str("link"));
    REQUIRE_FALSE(via_link);
    CHECK_THAT(via_link.error().message, Catch::Contains("symlink"));
    fs::create_directory(tmp.path() / "open");
    ::chmod(tmp.str("open").c_str(), 0777);
    auto open_dir = StateStore::open(tmp.str("open"));
    REQUIRE_FALSE(open_dir);
    CHECK_THAT(open_dir.error().message, Catch::Contains("world-writable"));
}

TEST_CASE("state store: a file with unknown content reads as no state", "[store]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    write_file(tmp.path() / "state/VI_1.state", "MAST");
    CHECK(store->read(Kind::instance, "VI_1").value() == std::nullopt);
    write_file(tmp.path() / "state/VI_1.state", "MASTER_RX_LOWER_PRI\n");
    CHECK(store->read(Kind::instance, "VI_1").value() == std::nullopt);
}

TEST_CASE("instance lock: the record round-trips and a damaged one reads as zeros", "[store]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    auto lock = store->lock(Kind::instance, "VI_1");
    REQUIRE(lock);
    CHECK(lock->record().sequence == 0);
    REQUIRE(lock->set_record({18446744073709551615ULL, 3, 1700000000000000}));
    CHECK(lock->record().sequence == 18446744073709551615ULL);
    CHECK(lock->record().transitions == 3);
    CHECK(lock->record().last_change_usec == 1700000000000000);
    REQUIRE(lock->set_record({7, 4, 5}));
    CHECK(lock->record().sequence == 7);
    write_file(tmp.path() / "state/.locks/instance:VI_1", "garbage!");
    CHECK(lock->record().sequence == 0);
    write_file(tmp.path() / "state/.locks/instance:VI_1", "                  42\n");  // a sequence-only record
    CHECK(lock->record().sequence == 42);
    REQUIRE(lock->set_record({9, 8, 1700000000000000, 123456789, 0xfedcba9876543210ULL}));
    CHECK(lock->record().last_change_boottime_usec == 123456789);
    CHECK(lock->record().boot == 0xfedcba9876543210ULL);
    // A three-field record (before the boot clock was kept), also when an
    // older kanotify wrote it over a longer one: the rest reads as unknown.
    write_file(tmp.path() / "state/.locks/instance:VI_1",
               "                   5                    6                    7\n"
               "                  99                   99\n");
    CHECK(lock->record().sequence == 5);
    CHECK(lock->record().last_change_usec == 7);
    CHECK(lock->record().last_change_boottime_usec == 0);
    CHECK(lock->record().boot == 0);
}

TEST_CASE("boot clock: the boot id is read and CLOCK_BOOTTIME advances", "[store]") {
    CHECK(boot_id() != 0);
    CHECK(boot_id() == boot_id());
    auto before = boottime_usec();
    CHECK(before > 0);
    CHECK(boottime_usec() >= before);
}

TEST_CASE("state store: directory and file modes do not depend on the umask", "[store][security]") {
    // keepalived runs notify scripts with a umask that clears execute bits;
    // without CAP_DAC_OVERRIDE (dropped when root) such a directory is unusable.
    TempDir tmp;
    auto old_mask = ::umask(0177);
    auto store = StateStore::open(tmp.str("deep/state"));
    Result<void> written = make_error(ErrorKind::system, "not written");
    if (store) {
        auto staged = store->stage(Kind::instance, "VI_1", State::master);
        if (staged)
            written = store->commit(*staged);
    }
    ::umask(old_mask);
    REQUIRE(store);
    REQUIRE(written);
    auto mode = [&](const std::string& rel) {
        struct stat st {};
        REQUIRE(::stat(tmp.str(rel).c_str(), &st) == 0);
        return st.st_mode & 07777;
    };
    CHECK(mode("deep") == 0755);
    CHECK(mode("deep/state") == 0755);
    CHECK(mode("deep/state/group") == 0755);
    CHECK(mode("deep/state/.locks") == 0700);
    CHECK(mode("deep/state/VI_1.state") == 0644);

    // A directory an earlier run made without its search bit is repaired.
    REQUIRE(::chmod(tmp.str("deep/state/.locks").c_str(), 0600) == 0);
    REQUIRE(StateStore::open(tmp.str("deep/state")));
    CHECK(mode("deep/state/.locks") == 0700);
}

TEST_CASE("state store: a hard link planted at the state path is replaced, its target untouched", "[store][security]") {
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    write_file(tmp.path() / "victim", "precious\n");
    fs::create_hard_link(tmp.path() / "victim", tmp.path() / "state/VI_1.state");
    auto staged = store->stage(Kind::instance, "VI_1", State::master);
    REQUIRE(staged);
    REQUIRE(store->commit(*staged));
    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
    CHECK(fs::hard_link_count(tmp.path() / "victim") == 1);
}

TEST_CASE("state store: symlinks planted at group/ and .locks/ are refused, their targets untouched",
          "[store][security]") {
    TempDir tmp;
    {
        auto store = StateStore::open(tmp.str("state"));
        REQUIRE(store);
        REQUIRE(store->write(Kind::instance, "VI_1", State::master));
    }
    fs::create_directory(tmp.path() / "elsewhere");
    for (const char* sub : {"group", ".locks"}) {
        INFO(sub);
        auto saved = tmp.path() / (std::string("saved") + sub);
        fs::rename(tmp.path() / "state" / sub, saved);
        fs::create_directory_symlink(tmp.path() / "elsewhere", tmp.path() / "state" / sub);
        auto store = StateStore::open(tmp.str("state"));
        REQUIRE_FALSE(store);
        CHECK_THAT(store.error().message, Catch::Contains("symlink"));
        CHECK(fs::is_empty(tmp.path() / "elsewhere"));
        fs::remove(tmp.path() / "state" / sub);
        fs::rename(saved, tmp.path() / "state" / sub);
    }
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    CHECK(store->read(Kind::instance, "VI_1").value() == State::master);  // nothing recorded was lost
}

TEST_CASE("instance lock: a symlink or a hard link planted at the lock file is refused, its target untouched",
          "[store][security]") {
    // The lock file's record (the highest applied sequence) is written in
    // place: a hard link would have us overwrite the file it shares.
    TempDir tmp;
    auto store = StateStore::open(tmp.str("state"));
    REQUIRE(store);
    REQUIRE(store->write(Kind::instance, "VI_1", State::backup));
    write_file(tmp.path() / "victim", "precious\n");
    auto lock_path = tmp.path() / "state/.locks/instance:VI_2";

    fs::create_symlink(tmp.path() / "victim", lock_path);
    auto via_symlink = store->lock(Kind::instance, "VI_2");
    REQUIRE_FALSE(via_symlink);
    CHECK_FALSE(store->try_lock(Kind::instance, "VI_2"));

    fs::remove(lock_path);
    fs::create_hard_link(tmp.path() / "victim", lock_path);
    auto via_link = store->lock(Kind::instance, "VI_2");
    REQUIRE_FALSE(via_link);
    CHECK_THAT(via_link.error().message, Catch::Contains("2 links"));
    CHECK_FALSE(store->try_lock(Kind::instance, "VI_2"));
    // The stale-temporary sweep only takes locks; it never writes them.
    REQUIRE(store->remove_stale_temporaries());

    CHECK(read_file(tmp.path() / "victim") == "precious\n");
    CHECK(store->read(Kind::instance, "VI_1").value() == State::backup);
    auto other = store->lock(Kind::instance, "VI_1");  // other instances are unaffected
    REQUIRE(other);
    REQUIRE(other->set_record({5, 1, 1}));
    CHECK(other->record().sequence == 5);
}
