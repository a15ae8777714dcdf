// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify fifo` against a real FIFO written the way keepalived writes it:
// one non-blocking write per line, a line dropped when the pipe is full.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "process.hpp"

using namespace kanotify::test;
namespace fs = std::filesystem;

namespace {

class FifoReader {
  public:
    FifoReader(const TempDir& tmp, std::vector<std::string> env = {}, const std::string& config = "") : tmp_(tmp) {
        fifo_ = tmp.str("notify.fifo");
        REQUIRE(::mkfifo(fifo_.c_str(), 0600) == 0);
        write_file(tmp.path() / "kanotify.toml", config);
        ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
        pid_ = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"), "--state-dir",
                      tmp.str("state"), fifo_},
                     tmp.str("fifo.out"), tmp.str("fifo.err"), env);
        REQUIRE(pid_ > 0);
        // keepalived opens the FIFO before starting the reader; opening it
        // non-blocking for writing succeeds once the reader has it open.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while ((fd_ = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
            REQUIRE(errno == ENXIO);
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    ~FifoReader() {
        if (fd_ >= 0)
            ::close(fd_);
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)wait_status(pid_);
        }
    }

    // Like keepalived: one write per line, never blocking; false when dropped.
    bool write_line(const std::string& line) {
        auto text = line + "\n";
        return ::write(fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    }

    // For lines longer than PIPE_BUF, which no single write can carry whole.
    bool write_all(const std::string& line) {
        auto text = line + "\n";
        std::string_view rest = text;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!rest.empty() && std::chrono::steady_clock::now() < deadline) {
            auto n = ::write(fd_, rest.data(), rest.size());
            if (n > 0)
                rest.remove_prefix(static_cast<std::size_t>(n));
            else
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return rest.empty();
    }

    void signal(int sig) { ::kill(pid_, sig); }

    // keepalived closing its end of the FIFO (a reload; or keepalived gone).
    void close_writer() {
        ::close(fd_);
        fd_ = -1;
    }

    int wait() {
        auto status = wait_status(pid_);
        pid_ = -1;
        return status;
    }

    [[nodiscard]] const std::string& path() const { return fifo_; }

    int terminate_and_wait(const std::vector<std::string>& after_signal = {}) {
        ::kill(pid_, SIGTERM);
        for (const auto& line : after_signal)
            CHECK(write_line(line));
        auto status = wait_status(pid_);
        pid_ = -1;
        return status;
    }

    [[nodiscard]] std::string err() const { return read_file(tmp_.path() / "fifo.err"); }

  private:
    const TempDir& tmp_;
    std::string fifo_;
    pid_t pid_ = -1;
    int fd_ = -1;
};

std::vector<nlohmann::json> journal(const TempDir& tmp, const std::string& type) {
    auto r = run(tmp, {KANOTIFY_BINARY, "history", "-n", "0", "--json", "--config", tmp.str("kanotify.toml"),
                       "--state-dir", tmp.str("state")});
    REQUIRE(r.status == 0);
    std::vector<nlohmann::json> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
        auto nl = r.out.find('\n', start);
        auto entry = nlohmann::json::parse(r.out.substr(start, nl - start));
        if (entry["type"] == type)
            out.push_back(entry);
        start = nl + 1;
    }
    return out;
}

constexpr const char* states[] = {"BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"};

}  // namespace

TEST_CASE("fifo: a 1000-line burst with slow actions loses no line and keeps the order", "[fifo][burst]") {
    TempDir tmp;
    // 1 ms of artificial work per transition: a second of actions per burst.
    FifoReader reader(tmp, {"KANOTIFY_TEST_ACTION_DELAY_US=1000"});
    std::vector<std::string> sent;
    std::size_t dropped = 0;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 1000; ++i) {
            auto line = fmt::format("INSTANCE \"VI_{}\" {} {}", i % 50, states[(i / 50 + round) % 5], i % 256);
            if (reader.write_line(line))
                sent.push_back(line);
            else
                ++dropped;
        }
        // The next burst comes while the first is still being dispatched.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(dropped == 0);
    // keepalived's final lines arrive after its SIGTERM.
    std::vector<std::string> final_lines;
    for (int i = 0; i < 50; ++i)
        final_lines.push_back(fmt::format("INSTANCE \"VI_{}\" STOP 0", i));
    CHECK(reader.terminate_and_wait(final_lines) == 0);
    sent.insert(sent.end(), final_lines.begin(), final_lines.end());

    auto entries = journal(tmp, "transition");
    REQUIRE(entries.size() == sent.size());
    std::uint64_t previous_sequence = 0;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        auto expected = sent[i];
        auto got = fmt::format("INSTANCE \"{}\" {} {}", entries[i]["name"].get<std::string>(),
                               entries[i]["state"].get<std::string>(), entries[i]["priority"].get<int>());
        REQUIRE(got == expected);
        auto sequence = entries[i]["sequence"].get<std::uint64_t>();
        CHECK(sequence > previous_sequence);
        previous_sequence = sequence;
        CHECK(entries[i]["outcome"] == "applied");
    }
    for (int i = 0; i < 50; ++i)
        CHECK(read_file(tmp.path() / fmt::format("state/VI_{}.state", i)) == "STOP\n");
}

TEST_CASE("fifo: garbage between valid lines is skipped, every valid line handled", "[fifo][garbage]") {
    TempDir tmp;
    FifoReader reader(tmp);
    std::vector<std::string> garbage{
        "",
        "INSTANCE VI_1 MASTER 100",
        "INSTANCE \"VI_1\" MASTER 300",
        "INSTANCE \"../../etc/passwd\" MASTER 100",
        "INSTANCE \"VI_1\" MASTER -1",
        "INSTANCE \"a;reboot\" BACKUP 1",
        std::string("INSTANCE \"VI\0_1\" MASTER 1", 25),
        "\xff\xfe\xfd",
        std::string(4096, 'G'),
        std::string(10240, '\x01'),
    };
    std::size_t valid = 0;
    std::string last_state;
    for (int i = 0; i < 200; ++i) {
        last_state = states[i % 5];
        REQUIRE(reader.write_all(fmt::format("INSTANCE \"VI_1\" {} 100", last_state)));
        ++valid;
        REQUIRE(reader.write_all(garbage[static_cast<std::size_t>(i) % garbage.size()]));
    }
    REQUIRE(reader.write_line("VS [192.0.2.10]:tcp:80 UP"));
    CHECK(reader.terminate_and_wait() == 0);
    CHECK(journal(tmp, "transition").size() == valid);
    CHECK(journal(tmp, "rejected").size() == 200);
    CHECK(journal(tmp, "checker").size() == 1);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == last_state + "\n");
    CHECK_FALSE(fs::exists(tmp.path() / "etc"));
    CHECK_THAT(reader.err(), Catch::Contains("malformed line skipped"));
}

TEST_CASE("fifo: 100,000 lines, half of them random garbage, no crash and every valid line handled",
          "[fifo][garbage]") {
    TempDir tmp;
    // One journal file for the whole run, so that every line can be counted.
    FifoReader reader(tmp, {}, "[journal]\nmax_bytes = 1073741824\n[dbus]\nsignal = false\n");
    std::mt19937 random(2026);
    std::map<std::string, std::string> last;
    std::size_t valid = 0, junk = 0;
    std::string batch;
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 100000; ++i) {
        if (random() % 2 == 0) {
            auto name = fmt::format("VI_{}", random() % 50);
            std::string state = states[random() % 5];
            batch += fmt::format("INSTANCE \"{}\" {} {}\n", name, state, random() % 256);
            last[name] = state;
            ++valid;
        } else {
            // Random bytes, never a newline, never starting like a checker line.
            std::string line(1 + random() % 300, '\0');
            for (auto& c : line) {
                do
                    c = static_cast<char>(random() % 256);
                while (c == '\n');
            }
            line[0] = '#';
            batch += line + "\n";
            ++junk;
        }
        if (batch.size() > 3000 || i == 99999) {
            batch.pop_back();  // write_all adds the last newline
            REQUIRE(reader.write_all(batch));
            batch.clear();
        }
    }
    auto written = std::chrono::steady_clock::now();
    CHECK(reader.terminate_and_wait() == 0);
    auto handled = std::chrono::steady_clock::now();
    // Counted straight from the journal file: one pass over 100,000 lines.
    std::map<std::string, std::size_t> types;
    std::istringstream lines(read_file(tmp.path() / "state/journal.jsonl"));
    for (std::string line; std::getline(lines, line);) {
        // Every entry starts with its type (parsing 100,000 lines in a
        // debug build would cost more than the run itself).
        auto end = line.find('"', 9);
        REQUIRE((line.rfind("{\"type\":\"", 0) == 0 && end != std::string::npos));
        ++types[line.substr(9, end - 9)];
    }
    INFO("writing took " << std::chrono::duration_cast<std::chrono::milliseconds>(written - started).count()
                         << " ms, draining "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(handled - written).count() << " ms");
    CHECK(types["transition"] == valid);
    CHECK(types["rejected"] == junk);
    for (const auto& [name, state] : last)
        CHECK(read_file(tmp.path() / fmt::format("state/{}.state", name)) == state + "\n");
}

TEST_CASE("fifo: SIGTERM ends the reader after the grace period, SIGHUP does not", "[fifo][signals]") {
    TempDir tmp;
    FifoReader reader(tmp);
    REQUIRE(reader.write_line("INSTANCE \"VI_1\" BACKUP 100"));
    reader.signal(SIGHUP);
    REQUIRE(reader.write_line("INSTANCE \"VI_1\" MASTER 100"));
    CHECK(reader.terminate_and_wait({"INSTANCE \"VI_1\" STOP 0"}) == 0);
    auto entries = journal(tmp, "transition");
    REQUIRE(entries.size() == 3);
    CHECK(entries[1]["state"] == "MASTER");
    CHECK(entries[2]["state"] == "STOP");
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "STOP\n");
}

TEST_CASE("fifo: a path that is not a FIFO is refused", "[fifo]") {
    TempDir tmp;
    write_file(tmp.path() / "kanotify.toml", "");
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    write_file(tmp.path() / "plain", "");
    auto r = run(tmp, {KANOTIFY_BINARY, "fifo", "--config", tmp.str("kanotify.toml"), "--state-dir",
                       tmp.str("state"), tmp.str("plain")});
    CHECK(r.status == 64);
    CHECK_THAT(r.err, Catch::Contains("is not a FIFO"));
    r = run(tmp, {KANOTIFY_BINARY, "fifo", "--config", tmp.str("kanotify.toml"), "--state-dir", tmp.str("state")});
    CHECK(r.status == 64);
}

TEST_CASE("fifo: a second reader on the same FIFO refuses with the reason", "[fifo]") {
    TempDir tmp;
    FifoReader reader(tmp);
    auto r = run(tmp, {KANOTIFY_BINARY, "fifo", "--config", tmp.str("kanotify.toml"), "--state-dir",
                       tmp.str("state"), tmp.str("notify.fifo")});
    CHECK(r.status == 64);
    CHECK_THAT(r.err, Catch::Contains("another process already reads the FIFO"));
    CHECK(reader.write_line("INSTANCE \"VI_1\" MASTER 100"));
    CHECK(reader.terminate_and_wait() == 0);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
}

TEST_CASE("fifo: on a reload the new reader applies its lines after the old reader's backlog", "[fifo][reload]") {
    TempDir tmp;
    // The old reader has slow actions and a backlog when keepalived reloads.
    FifoReader old_reader(tmp, {"KANOTIFY_TEST_ACTION_DELAY_US=3000"});
    for (int i = 0; i < 200; ++i)
        REQUIRE(old_reader.write_line(fmt::format("INSTANCE \"VI_{}\" BACKUP 100", i % 10)));
    // keepalived: SIGTERM to the old reader, a new FIFO, a new reader, the
    // current states written again (fifo_write_vrrp_states_on_reload).
    auto new_fifo = tmp.str("notify2.fifo");
    REQUIRE(::mkfifo(new_fifo.c_str(), 0600) == 0);
    old_reader.signal(SIGTERM);
    auto new_reader = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                             "--state-dir", tmp.str("state"), new_fifo},
                            tmp.str("new.out"), tmp.str("new.err"));
    int fd = -1;
    for (int i = 0; i < 1000 && (fd = ::open(new_fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(fd >= 0);
    for (int i = 0; i < 10; ++i) {
        auto line = fmt::format("INSTANCE \"VI_{}\" MASTER 100\n", i);
        REQUIRE(::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    }
    ::close(fd);
    CHECK(old_reader.terminate_and_wait() == 0);
    ::kill(new_reader, SIGTERM);
    CHECK(wait_status(new_reader) == 0);
    for (int i = 0; i < 10; ++i)
        CHECK(read_file(tmp.path() / fmt::format("state/VI_{}.state", i)) == "MASTER\n");
    auto entries = journal(tmp, "transition");
    REQUIRE(entries.size() == 210);
    for (std::size_t i = 0; i < 200; ++i)
        CHECK(entries[i]["state"] == "BACKUP");  // all of the old reader's first
    CHECK_THAT(read_file(tmp.path() / "new.err"), Catch::Contains("waiting for it"));
}

TEST_CASE("fifo: ../, /, NUL, newline, shell metacharacters and 10 KiB in names are refused, nothing recorded is lost",
          "[fifo][garbage][security]") {
    TempDir tmp;
    // Recorded before the reader starts: must be there, unchanged, after.
    write_file(tmp.path() / "kanotify.toml", "");
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    REQUIRE(run(tmp, {KANOTIFY_BINARY, "--config", tmp.str("kanotify.toml"), "--state-dir", tmp.str("state"),
                      "INSTANCE", "VI_0", "MASTER", "100"})
                .status == 0);
    auto journal_before = read_file(tmp.path() / "state/journal.jsonl");
    REQUIRE_FALSE(journal_before.empty());

    FifoReader reader(tmp);
    // Each is one line as keepalived would write it, but for the newline,
    // which makes two lines of it (both malformed).
    struct Bad {
        std::string name;
        std::size_t lines;
    };
    std::vector<Bad> bad{
        {"../../etc/cron.d/x", 1}, {"..", 1},          {"a/b", 1},      {"/etc/passwd", 1},
        {std::string("VI\0_1", 5), 1}, {"VI\n1", 2},   {"a;reboot", 1}, {"$(reboot)", 1},
        {"`id`", 1},               {"a|b&c>d", 1},     {std::string(10240, 'n'), 1},
    };
    std::size_t valid = 0, rejected = 0;
    std::string last_state;
    for (std::size_t i = 0; i < 3 * bad.size(); ++i) {
        last_state = states[i % 5];
        REQUIRE(reader.write_all(fmt::format("INSTANCE \"VI_1\" {} 100", last_state)));
        ++valid;
        const auto& b = bad[i % bad.size()];
        REQUIRE(reader.write_all(fmt::format("{} \"{}\" MASTER 100", i % 2 ? "GROUP" : "INSTANCE", b.name)));
        rejected += b.lines;
    }
    CHECK(reader.terminate_and_wait() == 0);
    CHECK(journal(tmp, "transition").size() == valid + 1);
    CHECK(journal(tmp, "rejected").size() == rejected);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == last_state + "\n");
    CHECK(read_file(tmp.path() / "state/VI_0.state") == "MASTER\n");
    auto journal_after = read_file(tmp.path() / "state/journal.jsonl");
    CHECK(journal_after.substr(0, journal_before.size()) == journal_before);
    // No state file but the two instances', nothing outside the state directory.
    for (const auto& entry : fs::recursive_directory_iterator(tmp.path() / "state")) {
        auto name = entry.path().filename().string();
        if (name.ends_with(".state"))
            CHECK((name == "VI_0.state" || name == "VI_1.state"));
    }
    CHECK_FALSE(fs::exists(tmp.path() / "etc"));
    CHECK_FALSE(fs::exists("/etc/cron.d/x.state"));
}

TEST_CASE("fifo: a FIFO others can write, or that belongs to another user, is refused, nothing recorded is lost",
          "[fifo][security]") {
    // Whoever can write the FIFO decides which transitions and hooks run.
    TempDir tmp;
    write_file(tmp.path() / "kanotify.toml", "");
    ::chmod(tmp.str("kanotify.toml").c_str(), 0644);
    REQUIRE(run(tmp, {KANOTIFY_BINARY, "--config", tmp.str("kanotify.toml"), "--state-dir", tmp.str("state"),
                      "INSTANCE", "VI_0", "MASTER", "100"})
                .status == 0);
    auto journal_before = read_file(tmp.path() / "state/journal.jsonl");
    auto fifo = tmp.str("planted.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto reader = [&] {
        return run(tmp, {KANOTIFY_BINARY, "fifo", "--config", tmp.str("kanotify.toml"), "--state-dir",
                         tmp.str("state"), fifo});
    };
    for (mode_t mode : {0622, 0602, 0660}) {
        INFO("mode " << std::oct << mode);
        REQUIRE(::chmod(fifo.c_str(), mode) == 0);
        auto r = reader();
        CHECK(r.status == 64);
        CHECK_THAT(r.err, Catch::Contains("refusing FIFO"));
    }
    // Through a symlink the target's owner and mode are what count.
    fs::create_symlink(fifo, tmp.path() / "link.fifo");
    auto via_link = run(tmp, {KANOTIFY_BINARY, "fifo", "--config", tmp.str("kanotify.toml"), "--state-dir",
                              tmp.str("state"), tmp.str("link.fifo")});
    CHECK(via_link.status == 64);
    CHECK_THAT(via_link.err, Catch::Contains("refusing FIFO"));
    if (::geteuid() == 0) {
        REQUIRE(::chmod(fifo.c_str(), 0644) == 0);
        REQUIRE(::chown(fifo.c_str(), 65534, 65534) == 0);
        auto r = reader();
        CHECK(r.status == 64);
        CHECK_THAT(r.err, Catch::Contains("owner uid 65534"));
    } else {
        WARN("not root: the foreign-owner case is not checked");
    }
    CHECK(read_file(tmp.path() / "state/VI_0.state") == "MASTER\n");
    CHECK(read_file(tmp.path() / "state/journal.jsonl") == journal_before);
    // A FIFO that is ours and writable by us only is accepted: the reader runs until SIGTERM.
    fs::remove(fifo);
    FifoReader ok(tmp);
    REQUIRE(ok.write_line("INSTANCE \"VI_0\" BACKUP 100"));
    CHECK(ok.terminate_and_wait() == 0);
    CHECK(read_file(tmp.path() / "state/VI_0.state") == "BACKUP\n");
}

TEST_CASE("fifo: after SIGTERM the reader records lines until keepalived closes the FIFO, past 500 ms, then exits "
          "at once",
          "[fifo][signals]") {
    TempDir tmp;
    FifoReader reader(tmp, {}, "[fifo]\ngrace_ms = 900\n");
    for (int i = 0; i < 20; ++i)
        REQUIRE(reader.write_line(fmt::format("INSTANCE \"VI_{}\" MASTER 100", i)));
    auto signalled = std::chrono::steady_clock::now();
    reader.signal(SIGTERM);
    // keepalived removes the addresses of 500 instances before it writes
    // their STOP lines: on a loaded machine that took longer than 500 ms.
    std::this_thread::sleep_until(signalled + std::chrono::milliseconds(600));
    for (int i = 0; i < 20; ++i)
        REQUIRE(reader.write_line(fmt::format("INSTANCE \"VI_{}\" STOP 0", i)));
    auto closed = std::chrono::steady_clock::now();
    reader.close_writer();
    CHECK(reader.wait() == 0);
    auto exited = std::chrono::steady_clock::now();
    auto err = reader.err();
    INFO(err);
    CHECK_THAT(err, Catch::Contains("every writer has closed the FIFO"));
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(exited - closed).count() < 250);
    for (int i = 0; i < 20; ++i)
        CHECK(read_file(tmp.path() / fmt::format("state/VI_{}.state", i)) == "STOP\n");
    CHECK(journal(tmp, "transition").size() == 40);
}

TEST_CASE("fifo: a writer that keeps the FIFO open past the deadline ends the reading at the deadline",
          "[fifo][signals]") {
    TempDir tmp;
    FifoReader reader(tmp, {}, "[fifo]\ngrace_ms = 200\n");
    REQUIRE(reader.write_line("INSTANCE \"VI_1\" MASTER 100"));
    auto signalled = std::chrono::steady_clock::now();
    reader.signal(SIGTERM);
    CHECK(reader.wait() == 0);
    auto elapsed = std::chrono::steady_clock::now() - signalled;
    CHECK(elapsed >= std::chrono::milliseconds(200));
    CHECK_THAT(reader.err(), Catch::Contains("the deadline after the signal passed"));
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "MASTER\n");
}

TEST_CASE("fifo: a reload that reuses the FIFO: the new reader waits for the leaving one, no line lost or reordered",
          "[fifo][reload]") {
    // keepalived unlinks only a FIFO it created itself: when the path was
    // already there (left by a keepalived that was killed), every reload
    // reopens the same FIFO, and the new reader finds the old one on it.
    TempDir tmp;
    FifoReader old_reader(tmp, {}, "[fifo]\ngrace_ms = 300\n");
    for (int i = 0; i < 50; ++i)
        REQUIRE(old_reader.write_line(fmt::format("INSTANCE \"VI_{}\" BACKUP 100", i % 5)));
    old_reader.signal(SIGTERM);
    auto new_reader = spawn({KANOTIFY_BINARY, "fifo", "--log-target", "stderr", "--config", tmp.str("kanotify.toml"),
                             "--state-dir", tmp.str("state"), old_reader.path()},
                            tmp.str("new.out"), tmp.str("new.err"));
    REQUIRE(new_reader > 0);
    // Whichever reader holds the FIFO now reads these.
    for (int i = 0; i < 5; ++i)
        REQUIRE(old_reader.write_line(fmt::format("INSTANCE \"VI_{}\" MASTER 100", i)));
    CHECK(old_reader.wait() == 0);
    for (int i = 0; i < 5; ++i)
        REQUIRE(old_reader.write_line(fmt::format("INSTANCE \"VI_{}\" FAULT 100", i)));
    // The new reader has the FIFO now: it exits once it has read them all.
    ::kill(new_reader, SIGTERM);
    old_reader.close_writer();
    CHECK(wait_status(new_reader) == 0);
    auto new_err = read_file(tmp.path() / "new.err");
    INFO(new_err);
    CHECK_THAT(new_err, Catch::Contains("is leaving"));
    CHECK_THAT(new_err, Catch::Contains("every writer has closed the FIFO"));
    std::map<std::string, std::vector<std::string>> applied;
    for (const auto& entry : journal(tmp, "transition"))
        applied[entry["name"].get<std::string>()].push_back(entry["state"].get<std::string>());
    REQUIRE(applied.size() == 5);
    for (const auto& [name, seen] : applied) {
        INFO(name);
        std::vector<std::string> expected(10, "BACKUP");
        expected.push_back("MASTER");
        expected.push_back("FAULT");
        CHECK(seen == expected);
        CHECK(read_file(tmp.path() / fmt::format("state/{}.state", name)) == "FAULT\n");
    }
}
