// SPDX-License-Identifier: GPL-2.0-or-later
// The announcer on a real segment: two network namespaces joined by a veth
// pair, kanotify (the built binary, argv front-end) announcing in one,
// tcpdump capturing in the other. Every frame is checked as the peer sees
// it, and tcpdump itself verifies the ICMPv6 checksums.
//
// Needs root, `ip` and tcpdump: main() exits 77 (skipped) with the reason
// otherwise.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pcap.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

using namespace kanotify::test;
using nlohmann::json;

namespace {

const std::string mac_a = "02:00:5e:10:00:0a";
const std::vector<std::uint8_t> mac_a_bytes{0x02, 0x00, 0x5e, 0x10, 0x00, 0x0a};
const std::vector<std::uint8_t> broadcast(6, 0xff);

int sh(const std::string& command) {
    int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void must(const std::string& command) {
    INFO(command);
    REQUIRE(sh(command + " >/dev/null 2>&1") == 0);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Namespaces a (the announcer, ka0) and b (the peer, kb0), removed at the end.
class Segment {
  public:
    Segment() {
        auto id = ::getpid();
        a = fmt::format("kn-ann-{}-a", id);
        b = fmt::format("kn-ann-{}-b", id);
        must("ip netns add " + a);
        must("ip netns add " + b);
        must(fmt::format("ip link add ka0 netns {} address {} type veth peer name kb0 netns {}", a, mac_a, b));
        for (const auto& ns : {a, b}) {
            must(fmt::format("ip -n {} link set lo up", ns));
            // Quiet IPv6 on the segment: no router solicitations.
            must(fmt::format("ip netns exec {} sysctl -qw net.ipv6.conf.all.router_solicitations=0 "
                             "net.ipv6.conf.default.router_solicitations=0",
                             ns));
        }
        must(fmt::format("ip -n {} link set ka0 up", a));
        must(fmt::format("ip -n {} link set kb0 up", b));
    }
    ~Segment() {
        stop_capture();
        (void)sh(fmt::format("ip netns del {} >/dev/null 2>&1", a));
        (void)sh(fmt::format("ip netns del {} >/dev/null 2>&1", b));
    }
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;

    void start_capture(const std::string& pcap, const std::string& log) {
        pcap_ = pcap;
        capture_ = spawn({"/usr/bin/env", "ip", "netns", "exec", b, "tcpdump", "-Z", "root", "-i", "kb0", "-U", "-n",
                          "--immediate-mode", "--time-stamp-precision=micro", "-w", pcap, "arp or icmp6"},
                         log + ".out", log);
        // tcpdump says "listening on" once its filter is in place.
        for (int waited = 0; slurp(log).find("listening on") == std::string::npos; waited += 10) {
            REQUIRE(waited < 5000);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    // Stops tcpdump (after the last frame had time to arrive) and returns
    // the frames kanotify's side sent: ARP and neighbour advertisements
    // from a's MAC.
    std::vector<CapturedFrame> stop_capture() {
        if (capture_ <= 0)
            return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        ::kill(capture_, SIGINT);
        (void)wait_status(capture_);
        capture_ = -1;
        std::vector<CapturedFrame> ours;
        for (auto& f : read_pcap(pcap_)) {
            if (f.bytes.size() < 14 || !std::equal(mac_a_bytes.begin(), mac_a_bytes.end(), f.bytes.begin() + 6))
                continue;
            bool arp = f.bytes[12] == 0x08 && f.bytes[13] == 0x06;
            bool na = f.bytes[12] == 0x86 && f.bytes[13] == 0xdd && f.bytes.size() >= 55 && f.bytes[20] == 58 &&
                      f.bytes[54] == 136;
            if (arp || na)
                ours.push_back(std::move(f));
        }
        return ours;
    }

    std::string a, b;

  private:
    pid_t capture_ = -1;
    std::string pcap_;
};

struct Announced {
    Run run;
    std::vector<CapturedFrame> frames;
    std::vector<json> announce_lines;
    std::string tcpdump_text;  // tcpdump -vv's reading of the capture
    std::string metrics;
    std::string diagnostics;
};

Announced announce(Segment& seg, const TempDir& tmp, const std::string& garp, const std::string& addresses,
                   const std::string& state = "MASTER") {
    auto config = tmp.str("kanotify.toml");
    std::ofstream(config) << fmt::format("state_dir = \"{}\"\n[metrics]\ntextfile = \"{}\"\n[garp]\n{}\n"
                                         "[instance.VI_1]\nnamespace = \"{}\"\ninterface = \"ka0\"\n{}\n",
                                         tmp.str("state"), tmp.str("metrics.prom"), garp, seg.a, addresses);
    std::filesystem::create_directories(tmp.str("state"));
    seg.start_capture(tmp.str("capture.pcap"), tmp.str("tcpdump.log"));
    Announced out;
    out.run = run(tmp, {KANOTIFY_BINARY, "--config", config, "INSTANCE", "VI_1", state, "100"});
    out.frames = seg.stop_capture();
    std::istringstream journal(slurp(tmp.str("state/journal.jsonl")));
    for (std::string line; std::getline(journal, line);) {
        auto j = json::parse(line);
        if (j["type"] == "announce")
            out.announce_lines.push_back(j);
    }
    auto text = tmp.str("tcpdump.txt");
    (void)sh(fmt::format("tcpdump -r {} -nn -e -vv > {} 2>/dev/null", tmp.str("capture.pcap"), text));
    out.tcpdump_text = slurp(text);
    // Shown with any failure: what tcpdump said, kanotify's stderr, the journal.
    out.diagnostics = "tcpdump: " + slurp(tmp.str("tcpdump.log")) + "\nkanotify: " + out.run.err +
                      "\njournal: " + slurp(tmp.str("state/journal.jsonl")).substr(0, 2000);
    out.metrics = slurp(tmp.str("metrics.prom"));
    return out;
}

std::vector<std::uint8_t> bytes(const CapturedFrame& f, std::size_t at, std::size_t n) {
    REQUIRE(f.bytes.size() >= at + n);
    return {f.bytes.begin() + static_cast<std::ptrdiff_t>(at), f.bytes.begin() + static_cast<std::ptrdiff_t>(at + n)};
}

bool is_arp(const CapturedFrame& f) {
    return f.bytes[12] == 0x08 && f.bytes[13] == 0x06;
}

int count_of(const std::string& text, const std::string& what) {
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

}  // namespace

TEST_CASE("announce: every ARP and NA frame reaches the peer with the right fields and spacing", "[announce]") {
    Segment seg;
    TempDir tmp;
    must(fmt::format("ip -n {} addr add 198.51.100.1/24 dev ka0", seg.a));
    must(fmt::format("ip -n {} addr add 2001:db8:10::1/64 dev ka0 nodad", seg.a));
    // A forwarding interface: the NA carries the Router flag.
    must(fmt::format("ip netns exec {} sysctl -qw net.ipv6.conf.ka0.forwarding=1", seg.a));
    auto result = announce(seg, tmp, "mode = \"both\"\ncount = 3\ninterval_ms = 150\nrate_pps = 1000",
                           "addresses = [\"198.51.100.1/24\", \"2001:db8:10::1\"]");
    INFO(result.diagnostics);
    REQUIRE(result.run.status == 0);

    // 3 rounds of request + reply + NA.
    REQUIRE(result.frames.size() == 9);
    for (std::size_t i = 0; i < result.frames.size(); ++i) {
        const auto& f = result.frames[i];
        INFO("frame " << i);
        CHECK(bytes(f, 6, 6) == mac_a_bytes);  // source MAC
        if (i % 3 == 2) {
            REQUIRE_FALSE(is_arp(f));
            CHECK(bytes(f, 0, 6) == std::vector<std::uint8_t>{0x33, 0x33, 0, 0, 0, 1});
            CHECK(f.bytes[21] == 255);      // hop limit
            CHECK(f.bytes[58] == 0xa0);     // Router and Override set, Solicited clear
            CHECK(bytes(f, 80, 6) == mac_a_bytes);  // target link-layer address
        } else {
            REQUIRE(is_arp(f));
            CHECK(bytes(f, 0, 6) == broadcast);
            auto op = f.bytes[21];
            CHECK(op == (i % 3 == 0 ? 1 : 2));  // request, then reply
            CHECK(bytes(f, 22, 6) == mac_a_bytes);
            CHECK(bytes(f, 28, 4) == std::vector<std::uint8_t>{198, 51, 100, 1});
            CHECK(bytes(f, 38, 4) == std::vector<std::uint8_t>{198, 51, 100, 1});
            CHECK(bytes(f, 32, 6) == (op == 1 ? broadcast : mac_a_bytes));
        }
    }
    // Rounds 150 ms apart (a shared machine: 50 ms either way), the packets
    // within a round 1 ms apart at least (rate_pps 1000).
    for (std::size_t round = 1; round < 3; ++round) {
        auto gap = result.frames[round * 3].time_usec - result.frames[(round - 1) * 3].time_usec;
        INFO("round " << round << " started " << gap << " us after the one before");
        CHECK(gap >= 150000 - 50000);
        CHECK(gap <= 150000 + 50000);
    }
    // Within a round, packets at least 1 ms apart (900 us: capture jitter).
    // The times are the peer's capture times: when its receive work runs
    // late under load (CI runs the ASan build two tests at a time), one
    // frame is stamped late and the next one seems to follow it at once
    // (47 us seen once). One such pair in the run is tolerated; an
    // announcer that did not pace would show it in all six pairs.
    int unpaced = 0;
    for (std::size_t i = 1; i < result.frames.size(); ++i) {
        if (i % 3 == 0)
            continue;  // a new round: checked above
        auto gap = result.frames[i].time_usec - result.frames[i - 1].time_usec;
        INFO("frames " << i - 1 << " and " << i << ": " << gap << " us apart");
        CHECK(gap >= 0);
        if (gap < 900)
            ++unpaced;
    }
    CHECK(unpaced <= 1);
    // tcpdump verifies every NA's checksum.
    CHECK(count_of(result.tcpdump_text, "neighbor advertisement") == 3);
    CHECK(count_of(result.tcpdump_text, "[icmp6 sum ok]") >= 3);
    CHECK(count_of(result.tcpdump_text, "bad icmp6 cksum") == 0);
    CHECK(count_of(result.tcpdump_text, "Flags [router, override]") == 3);

    REQUIRE(result.announce_lines.size() == 1);
    const auto& line = result.announce_lines[0];
    CHECK(line["outcome"] == "sent");
    CHECK(line["packets_sent"] == 9);
    CHECK(line["packet_errors"] == 0);
    CHECK(line["addresses"][0]["sent"] == 6);
    CHECK(line["addresses"][1]["sent"] == 3);
    CHECK_THAT(result.metrics, Catch::Contains("kanotify_announcement_packets_total{result=\"sent\"} 9"));
    auto history = run(tmp, {KANOTIFY_BINARY, "history", "--state-dir", tmp.str("state")});
    CHECK_THAT(history.out, Catch::Contains("announce INSTANCE VI_1 MASTER on ka0: sent, 9 packet(s) sent, 0 "
                                            "error(s); 198.51.100.1/24 sent 6; 2001:db8:10::1 sent 3"));
}

TEST_CASE("announce: addresses not on the interface, tentative ones and unparsable ones are refused and reported",
          "[announce]") {
    Segment seg;
    TempDir tmp;
    must(fmt::format("ip -n {} addr add 198.51.100.1/24 dev ka0", seg.a));
    must(fmt::format("ip -n {} addr add 198.51.100.7/24 dev lo", seg.a));  // in the namespace, elsewhere
    // DAD on: the address stays tentative for about a second.
    must(fmt::format("ip netns exec {} sysctl -qw net.ipv6.conf.ka0.accept_dad=1 net.ipv6.conf.ka0.dad_transmits=3",
                     seg.a));
    must(fmt::format("ip -n {} addr add 2001:db8:10::9/64 dev ka0", seg.a));
    auto result = announce(seg, tmp, "count = 1",
                           "addresses = [\"198.51.100.1\", \"198.51.100.7\", \"2001:db8:10::9\"]");
    INFO(result.diagnostics);
    REQUIRE(result.run.status == 0);
    REQUIRE(result.frames.size() == 1);
    CHECK(bytes(result.frames[0], 28, 4) == std::vector<std::uint8_t>{198, 51, 100, 1});
    REQUIRE(result.announce_lines.size() == 1);
    const auto& addresses = result.announce_lines[0]["addresses"];
    REQUIRE(addresses.size() == 3);
    CHECK(addresses[0]["result"] == "sent");
    CHECK(addresses[1]["result"] == "skipped");
    CHECK(addresses[1]["reason"] == "not configured on ka0");
    CHECK(addresses[2]["result"] == "skipped");
    CHECK_THAT(addresses[2]["reason"].get<std::string>(), Catch::Contains("tentative"));
}

TEST_CASE("announce: an interface that is down is reported and nothing is sent", "[announce]") {
    Segment seg;
    TempDir tmp;
    must(fmt::format("ip -n {} addr add 198.51.100.1/24 dev ka0", seg.a));
    must(fmt::format("ip -n {} link set ka0 down", seg.a));
    auto result = announce(seg, tmp, "count = 2\ninterval_ms = 10", "addresses = [\"198.51.100.1\"]");
    INFO(result.diagnostics);
    REQUIRE(result.run.status == 0);  // the state is recorded all the same
    CHECK(result.frames.empty());
    REQUIRE(result.announce_lines.size() == 1);
    const auto& line = result.announce_lines[0];
    CHECK(line["outcome"] == "failed");
    CHECK(line["error"] == "ka0 is down");
    CHECK(line["addresses"][0]["result"] == "failed");
    CHECK(line["packets_sent"] == 0);
}

TEST_CASE("announce: an interface missing from the namespace is reported", "[announce]") {
    Segment seg;
    TempDir tmp;
    auto config = tmp.str("k.toml");
    std::ofstream(config) << fmt::format("state_dir = \"{}\"\n[garp]\ncount = 1\n[instance.VI_1]\nnamespace = "
                                         "\"{}\"\ninterface = \"nosuch0\"\n",
                                         tmp.str("state"), seg.a);
    std::filesystem::create_directories(tmp.str("state"));
    auto r = run(tmp, {KANOTIFY_BINARY, "--config", config, "INSTANCE", "VI_1", "MASTER", "100"});
    REQUIRE(r.status == 0);
    auto journal = slurp(tmp.str("state/journal.jsonl"));
    CHECK_THAT(journal, Catch::Contains("\"type\":\"announce\""));
    CHECK_THAT(journal, Catch::Contains("there is no interface \\\"nosuch0\\\""));
}

TEST_CASE("announce: an argv MASTER whose addresses are gone is stale and sends nothing", "[announce]") {
    // Without --sequence the interface referees racing argv transitions:
    // the announcer's reading of it decides, and nothing may leave before.
    Segment seg;
    TempDir gone;
    auto stale = announce(seg, gone, "count = 2\ninterval_ms = 10", "addresses = [\"198.51.100.1\"]");
    INFO(stale.diagnostics);
    REQUIRE(stale.run.status == 0);
    CHECK(stale.frames.empty());
    CHECK(stale.announce_lines.empty());
    auto journal = slurp(gone.str("state/journal.jsonl"));
    CHECK_THAT(journal, Catch::Contains("\"outcome\":\"stale\""));
    CHECK_THAT(journal, Catch::Contains("removed them for a later transition"));
    // The same MASTER with its address on the interface: announced.
    must(fmt::format("ip -n {} addr add 198.51.100.1/24 dev ka0", seg.a));
    TempDir present;
    auto applied = announce(seg, present, "count = 2\ninterval_ms = 10", "addresses = [\"198.51.100.1\"]");
    INFO(applied.diagnostics);
    CHECK(applied.frames.size() == 2);
    REQUIRE(applied.announce_lines.size() == 1);
    CHECK(applied.announce_lines[0]["outcome"] == "sent");
    CHECK_THAT(slurp(present.str("state/journal.jsonl")), Catch::Contains("\"outcome\":\"applied\""));
}

TEST_CASE("announce: MASTER_RX_LOWER_PRI announces again, BACKUP does not", "[announce]") {
    Segment seg;
    TempDir tmp;
    must(fmt::format("ip -n {} addr add 198.51.100.1/24 dev ka0", seg.a));
    auto again = announce(seg, tmp, "count = 1", "", "MASTER_RX_LOWER_PRI");
    INFO(again.diagnostics);
    CHECK(again.frames.size() == 1);  // every global address of the interface: one
    TempDir tmp2;
    auto backup = announce(seg, tmp2, "count = 1", "", "BACKUP");
    CHECK(backup.frames.empty());
    CHECK(backup.announce_lines.empty());
}

TEST_CASE("announce: 256 addresses go out at the configured rate", "[announce][rate]") {
    Segment seg;
    TempDir tmp;
    std::string batch;
    std::string list = "addresses = [";
    for (int i = 0; i < 256; ++i) {
        batch += fmt::format("addr add 10.77.{}.{}/16 dev ka0\n", i / 200, 1 + i % 200);
        list += fmt::format("{}\"10.77.{}.{}\"", i ? ", " : "", i / 200, 1 + i % 200);
    }
    list += "]";
    std::ofstream(tmp.str("batch")) << batch;
    must(fmt::format("ip -n {} -batch {}", seg.a, tmp.str("batch")));
    constexpr int rate = 500;
    auto result = announce(seg, tmp, fmt::format("count = 1\nrate_pps = {}", rate), list);
    INFO(result.diagnostics);
    REQUIRE(result.run.status == 0);
    REQUIRE(result.frames.size() == 256);
    // 255 gaps of 2 ms: 510 ms, never faster than the rate. Each packet
    // waits 2 ms after the previous one actually left, so every late wake-up
    // adds up: on a loaded machine (load 8 on 2 CPUs) it took 760 ms.
    auto span = result.frames.back().time_usec - result.frames.front().time_usec;
    INFO("256 frames in " << span << " us");
    CHECK(span >= 255 * 1000000 / rate - 20000);
    CHECK(span <= 2 * 255 * 1000000 / rate);
    // Never two frames closer than the rate allows (capture jitter aside).
    // These are the peer's capture times: when its receive work runs late
    // under load, a frame is stamped late and the next one seems to follow
    // at once (27 us seen with an RPM build beside the ASan test). A few
    // such pairs (2%) are tolerated; an announcer that did not pace would
    // show it in all 255, and the span above would fail as well.
    int unpaced = 0;
    for (std::size_t i = 1; i < result.frames.size(); ++i)
        if (result.frames[i].time_usec - result.frames[i - 1].time_usec < 1000000 / rate - 500)
            ++unpaced;
    INFO(unpaced << " of 255 gaps shorter than the rate allows");
    CHECK(unpaced <= 5);
    // Every address exactly once.
    std::vector<std::vector<std::uint8_t>> targets;
    for (const auto& f : result.frames)
        targets.push_back(bytes(f, 38, 4));
    std::sort(targets.begin(), targets.end());
    CHECK(std::unique(targets.begin(), targets.end()) == targets.end());
    REQUIRE(result.announce_lines.size() == 1);
    CHECK(result.announce_lines[0]["packets_sent"] == 256);
}

// [garp] refresh_s in the resident front-end: a FIFO reader re-announces a
// MASTER instance every refresh_s seconds, and stops at BACKUP.
TEST_CASE("announce: the FIFO reader refreshes a MASTER instance every refresh_s and stops at BACKUP",
          "[announce][refresh]") {
    Segment seg;
    TempDir tmp;
    must(fmt::format("ip -n {} addr add 198.51.100.1/24 dev ka0", seg.a));
    auto config = tmp.str("kanotify.toml");
    std::ofstream(config) << fmt::format("state_dir = \"{}\"\n[dbus]\nsignal = false\n[garp]\ncount = 1\n"
                                         "refresh_s = 1\n[instance.VI_1]\nnamespace = \"{}\"\ninterface = \"ka0\"\n",
                                         tmp.str("state"), seg.a);
    std::filesystem::create_directories(tmp.str("state"));
    auto fifo = tmp.str("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    seg.start_capture(tmp.str("capture.pcap"), tmp.str("tcpdump.log"));
    pid_t reader = spawn({KANOTIFY_BINARY, "fifo", "--config", config, "--log-target", "stderr", fifo},
                         tmp.str("reader.out"), tmp.str("reader.err"));
    // The reader holds the FIFO open read-write: a non-blocking writer gets
    // ENXIO until then.
    int writer = -1;
    for (int waited = 0; (writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0; waited += 10) {
        REQUIRE(waited < 5000);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto write_line = [&](const std::string& line) {
        REQUIRE(::write(writer, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    };
    auto now_usec = [] {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    auto master_at = now_usec();
    write_line("INSTANCE \"VI_1\" MASTER 100\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(3600));
    auto backup_at = now_usec();
    write_line("INSTANCE \"VI_1\" BACKUP 100\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    auto frames = seg.stop_capture();
    ::close(writer);
    ::kill(reader, SIGTERM);
    CHECK(wait_status(reader) == 0);

    auto journal = slurp(tmp.str("state/journal.jsonl"));
    INFO("reader: " << slurp(tmp.str("reader.err")) << "\njournal: " << journal.substr(0, 4000));
    std::size_t before = 0, after = 0;
    for (const auto& f : frames) {
        CHECK(is_arp(f));
        CHECK(bytes(f, 28, 4) == std::vector<std::uint8_t>{198, 51, 100, 1});  // sender protocol address
        (f.time_usec < backup_at ? before : after) += 1;
        CHECK(f.time_usec >= master_at);
    }
    // The transition's own frame and at least two refreshes in 3.6 s (one a
    // second; generous for a loaded machine), none once BACKUP is recorded
    // (a frame racing the BACKUP line is allowed within 100 ms).
    CHECK(before >= 3);
    for (const auto& f : frames)
        CHECK_FALSE(f.time_usec > backup_at + 100000);
    std::vector<json> refreshes;
    std::istringstream lines(journal);
    for (std::string line; std::getline(lines, line);) {
        auto j = json::parse(line);
        if (j["type"] == "announce" && j.value("reason", "") == "refresh")
            refreshes.push_back(j);
    }
    REQUIRE(refreshes.size() >= 2);
    for (const auto& r : refreshes) {
        CHECK(r["name"] == "VI_1");
        CHECK(r["outcome"] == "sent");
        CHECK(r["packets_sent"] == 1);
        CHECK(r["time_usec"].get<std::int64_t>() <= backup_at + 100000);
    }
    CHECK(refreshes.size() + 1 == before + after);
}
