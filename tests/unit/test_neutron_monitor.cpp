// SPDX-License-Identifier: GPL-2.0-or-later
// The neutron monitor's policy without a kernel: its command line, which
// netlink notifications move the router's state, the retry schedule, and
// the files and child processes it handles.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "kanotify/event.hpp"
#include "neutron_monitor.hpp"
#include "temp_dir.hpp"
#include "unique_fd.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;

namespace {

Result<MonitorOptions> parse(std::vector<std::string> words) {
    std::vector<char*> argv;
    for (auto& w : words)
        argv.push_back(w.data());
    return parse_monitor_args(std::span<char* const>(argv.data(), argv.size()));
}

// What the L3 agent passes, in its two spellings.
std::vector<std::string> agent_args(bool equals) {
    std::vector<std::pair<std::string, std::string>> flags = {
        {"--router_id", "3f1c2d4e-0000-4000-8000-000000000001"},
        {"--namespace", "qrouter-3f1c2d4e"},
        {"--conf_dir", "/var/lib/neutron/ha_confs/3f1c2d4e"},
        {"--log-file", "/var/lib/neutron/ha_confs/3f1c2d4e/neutron-keepalived-state-change.log"},
        {"--monitor_interface", "ha-12345678-9a"},
        {"--monitor_cidr", "169.254.0.1/24"},
        {"--pid_file", "/var/lib/neutron/external/pids/3f1c2d4e.monitor.pid.neutron-keepalived-state-monitor"},
        {"--state_path", "/var/lib/neutron"},
        {"--user", "107"},
        {"--group", "113"},
    };
    std::vector<std::string> out;
    for (auto& [flag, value] : flags) {
        if (equals) {
            out.push_back(flag + "=" + value);
        } else {
            out.push_back(flag);
            out.push_back(value);
        }
    }
    out.emplace_back("--enable_conntrackd");
    out.emplace_back("--debug");
    return out;
}

IpAddress ip(const char* text) {
    auto parsed = parse_monitor_cidr(text);
    REQUIRE(parsed);
    return *parsed;
}

RtnlEvent address_event(RtnlEvent::Type type, int ifindex, const char* cidr) {
    RtnlEvent e;
    e.type = type;
    e.ifindex = ifindex;
    e.address = ip(cidr);
    return e;
}

RtnlEvent link_event(RtnlEvent::Type type, int ifindex, const char* name) {
    RtnlEvent e;
    e.type = type;
    e.ifindex = ifindex;
    e.ifname = name;
    return e;
}

RtnlSnapshot snapshot(std::vector<std::pair<int, std::string>> links,
                      std::vector<std::pair<int, const char*>> addresses) {
    RtnlSnapshot s;
    s.links = std::move(links);
    for (auto [index, cidr] : addresses) {
        KernelAddress a;
        a.ifindex = index;
        a.address = ip(cidr);
        s.addresses.push_back(a);
    }
    return s;
}

// Netlink notifications laid out as the kernel sends them.
class Notifications {
  public:
    void address(std::uint16_t type, int family, int ifindex, const char* text, int prefix) {
        std::uint8_t raw[16] = {};
        REQUIRE(::inet_pton(family, text, raw) == 1);
        auto start = begin(type);
        ifaddrmsg body{};
        body.ifa_family = static_cast<std::uint8_t>(family);
        body.ifa_prefixlen = static_cast<std::uint8_t>(prefix);
        body.ifa_index = static_cast<std::uint32_t>(ifindex);
        append(&body, sizeof body);
        attribute(IFA_ADDRESS, raw, family == AF_INET ? 4 : 16);
        finish(start);
    }
    void link(std::uint16_t type, int ifindex, const char* name) {
        auto start = begin(type);
        ifinfomsg body{};
        body.ifi_index = ifindex;
        append(&body, sizeof body);
        attribute(IFLA_IFNAME, name, std::strlen(name) + 1);
        finish(start);
    }
    std::vector<std::uint8_t> bytes;

  private:
    std::size_t begin(std::uint16_t type) {
        auto start = bytes.size();
        nlmsghdr header{};
        header.nlmsg_type = type;
        append(&header, sizeof header);
        return start;
    }
    void finish(std::size_t start) {
        auto length = static_cast<std::uint32_t>(bytes.size() - start);
        std::memcpy(bytes.data() + start, &length, sizeof length);
        while (bytes.size() % 4)
            bytes.push_back(0);
    }
    void attribute(std::uint16_t type, const void* data, std::size_t size) {
        rtattr attr{};
        attr.rta_type = type;
        attr.rta_len = static_cast<std::uint16_t>(sizeof attr + size);
        append(&attr, sizeof attr);
        append(data, size);
        while (bytes.size() % 4)
            bytes.push_back(0);
    }
    void append(const void* data, std::size_t size) {
        auto p = static_cast<const std::uint8_t*>(data);
        bytes.insert(bytes.end(), p, p + size);
    }
};

}  // namespace

TEST_CASE("monitor flags: the agent's --flag=value and --flag value forms parse alike", "[monitor][flags]") {
    auto with_equals = parse(agent_args(true));
    auto with_space = parse(agent_args(false));
    REQUIRE(with_equals);
    REQUIRE(with_space);
    for (const auto* o : {&*with_equals, &*with_space}) {
        CHECK(o->router_id == "3f1c2d4e-0000-4000-8000-000000000001");
        CHECK(o->netns == "qrouter-3f1c2d4e");
        CHECK(o->conf_dir == "/var/lib/neutron/ha_confs/3f1c2d4e");
        CHECK(o->log_file == "/var/lib/neutron/ha_confs/3f1c2d4e/neutron-keepalived-state-change.log");
        CHECK(o->interface == "ha-12345678-9a");
        CHECK(o->cidr == "169.254.0.1/24");
        CHECK(o->state_path == "/var/lib/neutron");
        CHECK(o->user == "107");
        CHECK(o->group == "113");
        CHECK(o->enable_conntrackd);
        CHECK(o->debug);
        CHECK(o->ignored.empty());
        CHECK(validate_monitor_options(*o));
    }
}

TEST_CASE("monitor flags: unknown ones are ignored with their values, booleans take oslo spellings",
          "[monitor][flags]") {
    auto args = agent_args(false);
    args.insert(args.begin(), {"--config-file", "/etc/neutron/neutron.conf", "--AGENT-root_helper=sudo x",
                               "stray", "--log_file", "/tmp/x.log"});
    args.emplace_back("--enable_conntrackd=false");
    args.emplace_back("--nodebug");
    auto o = parse(args);
    REQUIRE(o);
    CHECK(o->log_file == "/var/lib/neutron/ha_confs/3f1c2d4e/neutron-keepalived-state-change.log");  // last wins
    CHECK_FALSE(o->enable_conntrackd);
    CHECK_FALSE(o->debug);
    CHECK(o->ignored == std::vector<std::string>{"--config-file", "/etc/neutron/neutron.conf",
                                                 "--AGENT-root_helper=sudo x", "stray"});
    CHECK_FALSE(parse({"--debug=maybe"}));
    CHECK_FALSE(parse({"--router_id"}));  // a value is missing
    auto ms = parse({"--initial_timeout_ms", "250"});
    REQUIRE(ms);
    CHECK(ms->initial_timeout == std::chrono::milliseconds(250));
    CHECK_FALSE(parse({"--initial_timeout_ms=0"}));
    CHECK_FALSE(parse({"--initial_timeout_ms=12x"}));
}

TEST_CASE("monitor flags: missing or unsafe values are refused with the flag named", "[monitor][flags]") {
    auto base = *parse(agent_args(true));
    auto refused = [&](auto change, const std::string& word) {
        auto o = base;
        change(o);
        auto ok = validate_monitor_options(o);
        REQUIRE_FALSE(ok);
        CHECK_THAT(ok.error().message, Catch::Contains(word));
    };
    refused([](MonitorOptions& o) { o.router_id.clear(); }, "--router_id");
    refused([](MonitorOptions& o) { o.router_id = "a b\r\nX-Evil: 1"; }, "--router_id");
    refused([](MonitorOptions& o) { o.interface.clear(); }, "--monitor_interface");
    refused([](MonitorOptions& o) { o.interface = "../etc"; }, "--monitor_interface");
    refused([](MonitorOptions& o) { o.cidr.clear(); }, "--monitor_cidr");
    refused([](MonitorOptions& o) { o.conf_dir.clear(); }, "--conf_dir");
    refused([](MonitorOptions& o) { o.pid_file.clear(); }, "--pid_file");
    refused([](MonitorOptions& o) { o.state_path = std::string(100, 'a'); }, "--state_path");
    refused([](MonitorOptions& o) { o.netns = "qrouter x"; }, "--namespace");
    refused([](MonitorOptions& o) { o.neutron_state_names = "old"; }, "--neutron_state_names");
    // An invalid cidr is not refused here: it is reported at run time with
    // the timeout line and a backup state, as upstream does.
    auto o = base;
    o.cidr = "not-an-address";
    CHECK(validate_monitor_options(o));
    o = base;
    o.netns.clear();  // started inside the namespace with `ip netns exec`
    CHECK(validate_monitor_options(o));
}

TEST_CASE("monitor cidr: a bare address is a host route, host bits are kept", "[monitor]") {
    CHECK(ip("169.254.0.1").str() == "169.254.0.1/32");
    CHECK(ip("169.254.0.1/24").str() == "169.254.0.1/24");
    CHECK(ip("fe80::1").str() == "fe80::1/128");
    CHECK_FALSE(parse_monitor_cidr("169.254.0.1/33"));
    CHECK_FALSE(parse_monitor_cidr("nonsense"));
}

TEST_CASE("VIP tracker: snapshot, add, delete, unrelated addresses and devices", "[monitor][tracker]") {
    using T = RtnlEvent::Type;
    VipTracker t("ha-1", ip("169.254.0.1/24"));
    t.reset(snapshot({{1, "lo"}, {5, "ha-1"}, {6, "qr-1"}}, {{1, "127.0.0.1/8"}, {5, "169.254.192.3/18"}}));
    CHECK_FALSE(t.present());
    CHECK(t.ifindex() == 5);
    // Unrelated: another address, the VIP on another device, the same IP as /32.
    CHECK(t.apply(address_event(T::address_added, 5, "10.0.0.1/24")) == VipTracker::Change::none);
    CHECK(t.apply(address_event(T::address_added, 6, "169.254.0.1/24")) == VipTracker::Change::none);
    CHECK(t.apply(address_event(T::address_added, 5, "169.254.0.1/32")) == VipTracker::Change::none);
    CHECK_FALSE(t.present());
    CHECK(t.apply(address_event(T::address_added, 5, "169.254.0.1/24")) == VipTracker::Change::changed);
    CHECK(t.present());
    CHECK(t.apply(address_event(T::address_added, 5, "169.254.0.1/24")) == VipTracker::Change::none);
    CHECK(t.apply(address_event(T::address_removed, 5, "169.254.0.1/32")) == VipTracker::Change::none);
    CHECK(t.apply(address_event(T::address_removed, 5, "169.254.0.1/24")) == VipTracker::Change::changed);
    CHECK_FALSE(t.present());
}

TEST_CASE("VIP tracker: the HA device removed or renamed gives backup, a new one asks for a snapshot",
          "[monitor][tracker]") {
    using T = RtnlEvent::Type;
    VipTracker t("ha-1", ip("169.254.0.1/24"));
    t.reset(snapshot({{5, "ha-1"}}, {{5, "169.254.0.1/24"}}));
    CHECK(t.present());
    CHECK(t.apply(link_event(T::link_changed, 5, "ha-1")) == VipTracker::Change::none);  // e.g. up/down
    CHECK(t.apply(link_event(T::link_removed, 6, "other")) == VipTracker::Change::none);
    CHECK(t.apply(link_event(T::link_removed, 5, "ha-1")) == VipTracker::Change::changed);
    CHECK_FALSE(t.present());
    CHECK(t.ifindex() == 0);
    // Without the device, its old addresses mean nothing.
    CHECK(t.apply(address_event(T::address_added, 5, "169.254.0.1/24")) == VipTracker::Change::none);
    CHECK(t.apply(link_event(T::link_changed, 9, "ha-1")) == VipTracker::Change::resync);
    t.reset(snapshot({{9, "ha-1"}}, {}));
    CHECK(t.apply(address_event(T::address_added, 9, "169.254.0.1/24")) == VipTracker::Change::changed);
    CHECK(t.apply(link_event(T::link_changed, 9, "ha-renamed")) == VipTracker::Change::changed);
    CHECK_FALSE(t.present());
}

TEST_CASE("VIP tracker: IPv6 VIP", "[monitor][tracker]") {
    using T = RtnlEvent::Type;
    VipTracker t("ha-1", ip("fe80::1/64"));
    t.reset(snapshot({{5, "ha-1"}}, {{5, "fe80::2/64"}}));
    CHECK_FALSE(t.present());
    CHECK(t.apply(address_event(T::address_added, 5, "fe80::1/64")) == VipTracker::Change::changed);
    CHECK(t.present());
}

TEST_CASE("rtnetlink notifications decode: addresses added and deleted, links changed and removed",
          "[monitor][netlink]") {
    Notifications n;
    n.address(RTM_NEWADDR, AF_INET, 5, "169.254.0.1", 24);
    n.address(RTM_DELADDR, AF_INET6, 5, "2001:db8::1", 64);
    n.link(RTM_NEWLINK, 7, "ha-1");
    n.link(RTM_DELLINK, 7, "ha-1");
    std::vector<RtnlEvent> events;
    auto progress = decode_rtnl_events(n.bytes, events);
    REQUIRE(progress);
    REQUIRE(events.size() == 4);
    CHECK(events[0].type == RtnlEvent::Type::address_added);
    CHECK(events[0].ifindex == 5);
    CHECK(events[0].address.str() == "169.254.0.1/24");
    CHECK(events[1].type == RtnlEvent::Type::address_removed);
    CHECK(events[1].address.str() == "2001:db8::1/64");
    CHECK(events[2].type == RtnlEvent::Type::link_changed);
    CHECK(events[2].ifname == "ha-1");
    CHECK(events[3].type == RtnlEvent::Type::link_removed);
    // Every truncation is an error or a shorter list, never a read past the end.
    for (std::size_t cut = 1; cut < n.bytes.size(); ++cut) {
        std::vector<RtnlEvent> partial;
        auto p = decode_rtnl_events(std::span<const std::uint8_t>(n.bytes.data(), cut), partial);
        CHECK((!p || partial.size() < 4));
    }
}

TEST_CASE("retry schedule: backoff grows to its cap, a newer state is tried at once", "[monitor][retry]") {
    using Clock = RetrySchedule::Clock;
    using std::chrono::milliseconds;
    RetrySchedule r;
    auto t0 = Clock::time_point{} + std::chrono::hours(1);
    CHECK(r.wait_ms(t0) == -1);
    CHECK_FALSE(r.due(t0));
    r.set("primary", t0);
    CHECK(r.due(t0));
    CHECK(r.wait_ms(t0) == 0);
    r.failed(t0, 0.0);
    CHECK_FALSE(r.due(t0));
    CHECK(r.wait_ms(t0) == 10);
    auto t = t0;
    for (int i = 0; i < 10; ++i) {
        t += milliseconds(r.wait_ms(t));
        CHECK(r.due(t));
        r.failed(t, 0.5);
    }
    CHECK(r.wait_ms(t) == 3000);  // 2000 ms cap plus half of it as jitter
    CHECK(r.failures() == 11);
    r.set("backup", t);  // the latest state supersedes the one waiting
    CHECK(r.due(t));
    CHECK(*r.pending() == "backup");
    CHECK(r.failures() == 0);
    r.delivered();
    CHECK_FALSE(r.pending());
}

TEST_CASE("monitor retry: a full listen backlog is retried within milliseconds, without growing the backoff",
          "[monitor]") {
    using Clock = RetrySchedule::Clock;
    using std::chrono::milliseconds;
    RetrySchedule r;
    auto t = Clock::time_point{} + std::chrono::hours(1);
    r.set("primary", t);
    for (int i = 0; i < 20; ++i) {
        r.busy(t, 0.5);
        CHECK(r.wait_ms(t) == 7);  // 5 ms and half of it as jitter, every time
        t += milliseconds(r.wait_ms(t));
        CHECK(r.due(t));
    }
    CHECK(r.failures() == 20);
    // The agent then goes away: the backoff starts where it stood (10 ms).
    r.failed(t, 0.0);
    CHECK(r.wait_ms(t) == 10);
    r.failed(t, 0.0);
    CHECK(r.wait_ms(t) == 20);
}

TEST_CASE("neutron state file: exactly the word, no newline, replaced, never through a symlink",
          "[monitor][files]") {
    TempDir tmp;
    UniqueFd dir(::open(tmp.str().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(write_neutron_state(dir.get(), "primary"));
    CHECK(read_file(tmp.path() / "state") == "primary");
    REQUIRE(write_neutron_state(dir.get(), "backup"));
    CHECK(read_file(tmp.path() / "state") == "backup");
    // Only the state file is left behind.
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
        (void)e;
        ++entries;
    }
    CHECK(entries == 1);
    // A symlink planted at the name is replaced, its target untouched.
    kanotify::test::write_file(tmp.path() / "victim", "keep");
    std::filesystem::remove(tmp.path() / "state");
    std::filesystem::create_symlink(tmp.path() / "victim", tmp.path() / "state");
    REQUIRE(write_neutron_state(dir.get(), "primary"));
    CHECK(read_file(tmp.path() / "victim") == "keep");
    CHECK_FALSE(std::filesystem::is_symlink(tmp.path() / "state"));
    CHECK(read_file(tmp.path() / "state") == "primary");
}

TEST_CASE("neutron state file: written now and synced later, still one whole word and no temporary",
          "[monitor][files]") {
    TempDir tmp;
    UniqueFd dir(::open(tmp.str().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(write_neutron_state(dir.get(), "backup", StateDurability::later));
    CHECK(read_file(tmp.path() / "state") == "backup");
    REQUIRE(write_neutron_state(dir.get(), "primary", StateDurability::later));
    CHECK(read_file(tmp.path() / "state") == "primary");
    REQUIRE(sync_neutron_state(dir.get()));
    CHECK(read_file(tmp.path() / "state") == "primary");
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
        (void)e;
        ++entries;
    }
    CHECK(entries == 1);
    // Syncing never follows a symlink someone put at the name meanwhile.
    kanotify::test::write_file(tmp.path() / "victim", "keep");
    std::filesystem::remove(tmp.path() / "state");
    std::filesystem::create_symlink(tmp.path() / "victim", tmp.path() / "state");
    auto synced = sync_neutron_state(dir.get());
    REQUIRE_FALSE(synced);
    CHECK(synced.error().describe().find("state file") != std::string::npos);
    CHECK(read_file(tmp.path() / "victim") == "keep");
}

TEST_CASE("pid file: our pid, removed only while it is still ours", "[monitor][files]") {
    TempDir tmp;
    auto path = tmp.str("monitor.pid");
    REQUIRE(write_pid_file(path, 4242));
    CHECK(read_file(path) == "4242");
    remove_pid_file(path, 4243);  // a successor's file stays
    CHECK(std::filesystem::exists(path));
    remove_pid_file(path, 4242);
    CHECK_FALSE(std::filesystem::exists(path));
    // Whatever the umask, the agent (another user) can read it.
    auto old_mask = ::umask(0077);
    auto written = write_pid_file(path, 4244);
    ::umask(old_mask);
    REQUIRE(written);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
    CHECK_FALSE(write_pid_file(tmp.str("missing-dir/monitor.pid"), 1));
    CHECK_FALSE(write_pid_file(tmp.str() + "/", 1));
}

TEST_CASE("child processes: an argument vector, output captured, no descriptor inherited, killed at the timeout",
          "[monitor][exec]") {
    // A descriptor of ours without O_CLOEXEC must still not reach the child.
    int leaked = ::open("/dev/null", O_RDONLY);
    REQUIRE(leaked >= 0);
    auto listing = run_in_netns(-1, {"ls", "/proc/self/fd"}, std::chrono::milliseconds(5000));
    ::close(leaked);
    REQUIRE(listing);
    CHECK(listing->exit_code == 0);
    // 0, 1, 2 and the directory ls itself opened.
    CHECK(listing->output == "0\n1\n2\n3\n");
    auto words = run_in_netns(-1, {"printf", "%s|", "a b", "$(id)", ";x"}, std::chrono::milliseconds(5000));
    REQUIRE(words);
    CHECK(words->output == "a b|$(id)|;x|");  // no shell ever saw them
    auto failing = run_in_netns(-1, {"ls", "/nonexistent-kanotify"}, std::chrono::milliseconds(5000));
    REQUIRE(failing);
    CHECK(failing->exit_code != 0);
    CHECK_THAT(failing->output, Catch::Contains("nonexistent-kanotify"));
    auto missing = run_in_netns(-1, {"kanotify-no-such-program"}, std::chrono::milliseconds(5000));
    REQUIRE(missing);
    CHECK(missing->exit_code == 127);
    auto start = std::chrono::steady_clock::now();
    auto slow = run_in_netns(-1, {"sleep", "30"}, std::chrono::milliseconds(200));
    REQUIRE(slow);
    CHECK(slow->timed_out);
    CHECK(slow->signal == SIGKILL);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("conntrackd options: commit, flush, resync, bulk on primary, timers and resync request on backup",
          "[monitor]") {
    auto primary = conntrackd_options(true);
    auto backup = conntrackd_options(false);
    CHECK(std::vector<std::string_view>(primary.begin(), primary.end()) ==
          std::vector<std::string_view>{"-c", "-f", "-R", "-B"});
    CHECK(std::vector<std::string_view>(backup.begin(), backup.end()) == std::vector<std::string_view>{"-t", "-n"});
}

TEST_CASE("credentials: numeric ids as the agent passes them, unknown names refused", "[monitor]") {
    auto c = resolve_credentials("107", "113");
    REQUIRE(c);
    CHECK(c->uid == 107);
    CHECK(c->gid == 113);
    CHECK(c->groups == std::vector<gid_t>{113});
    auto root = resolve_credentials("root", "");
    REQUIRE(root);
    CHECK(root->uid == 0);
    CHECK_FALSE(resolve_credentials("kanotify-no-such-user", ""));
    CHECK_FALSE(resolve_credentials("", "kanotify-no-such-group"));
    CHECK_FALSE(resolve_credentials("-1", ""));
}

namespace {

std::size_t entries_in(const std::filesystem::path& dir) {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        (void)entry;
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("pid file: a symlink, a hard link or a FIFO planted at its path is replaced, never written through",
          "[monitor][files][security]") {
    // The monitor starts as root; the pid directory belongs to the agent's user.
    TempDir tmp;
    namespace fs = std::filesystem;
    auto path = tmp.str("pids/router.pid");
    fs::create_directory(tmp.path() / "pids");
    kanotify::test::write_file(tmp.path() / "victim", "root:precious\n");

    fs::create_symlink(tmp.path() / "victim", path);
    REQUIRE(write_pid_file(path, 4242));
    CHECK_FALSE(fs::is_symlink(path));
    CHECK(read_file(path) == "4242");
    CHECK(read_file(tmp.path() / "victim") == "root:precious\n");

    fs::remove(path);
    fs::create_symlink(tmp.path() / "not-there", path);  // a dangling one must not create its target
    REQUIRE(write_pid_file(path, 4242));
    CHECK_FALSE(fs::exists(tmp.path() / "not-there"));

    fs::remove(path);
    fs::create_hard_link(tmp.path() / "victim", path);
    REQUIRE(write_pid_file(path, 4243));
    CHECK(read_file(path) == "4243");
    CHECK(read_file(tmp.path() / "victim") == "root:precious\n");  // not truncated through the link
    CHECK(fs::hard_link_count(tmp.path() / "victim") == 1);

    fs::remove(path);
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);  // opening it for writing would block for ever
    REQUIRE(write_pid_file(path, 4244));
    CHECK(fs::is_regular_file(path));
    CHECK(read_file(path) == "4244");
    CHECK(entries_in(tmp.path() / "pids") == 1);  // no temporary left behind

    // At exit: a link or FIFO planted over our file is left alone, the
    // target is never removed or read through.
    fs::remove(path);
    kanotify::test::write_file(tmp.path() / "ours", "4245");
    fs::create_symlink(tmp.path() / "ours", path);
    remove_pid_file(path, 4245);
    CHECK(fs::is_symlink(path));
    CHECK(read_file(tmp.path() / "ours") == "4245");
    fs::remove(path);
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    remove_pid_file(path, 4245);  // returns at once
    CHECK(fs::exists(path));
}

TEST_CASE("log file: a symlink, a hard link or a FIFO planted at --log-file is refused, its target untouched",
          "[monitor][files][security]") {
    TempDir tmp;
    namespace fs = std::filesystem;
    auto path = tmp.str("monitor.log");
    auto fd = open_log_file(path);
    REQUIRE(fd);
    REQUIRE(::write(fd->get(), "line 1\n", 7) == 7);
    fd = open_log_file(path);  // reopened (SIGHUP): appended to, nothing lost
    REQUIRE(fd);
    REQUIRE(::write(fd->get(), "line 2\n", 7) == 7);
    CHECK(read_file(path) == "line 1\nline 2\n");

    kanotify::test::write_file(tmp.path() / "victim", "root:precious\n");
    auto planted = tmp.str("planted.log");
    fs::create_symlink(tmp.path() / "victim", planted);
    auto via_symlink = open_log_file(planted);
    REQUIRE_FALSE(via_symlink);
    CHECK_THAT(via_symlink.error().describe(), Catch::Contains("symlink"));

    fs::remove(planted);
    fs::create_hard_link(tmp.path() / "victim", planted);
    auto via_link = open_log_file(planted);
    REQUIRE_FALSE(via_link);
    CHECK_THAT(via_link.error().message, Catch::Contains("2 links"));

    fs::remove(planted);
    REQUIRE(::mkfifo(planted.c_str(), 0600) == 0);
    auto fifo = open_log_file(planted);  // no reader: must not block
    REQUIRE_FALSE(fifo);
    UniqueFd reader(::open(planted.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    REQUIRE(reader);
    fifo = open_log_file(planted);  // with a reader: opens, then refused
    REQUIRE_FALSE(fifo);
    CHECK_THAT(fifo.error().message, Catch::Contains("not a regular file"));

    CHECK(read_file(tmp.path() / "victim") == "root:precious\n");
    CHECK(read_file(path) == "line 1\nline 2\n");
}

TEST_CASE("monitor flags: ../, /, NUL, newline, shell metacharacters and 10 KiB in every flag",
          "[monitor][flags][security]") {
    auto base = *parse(agent_args(true));
    const std::string nul("a\0b", 3);
    const std::string huge(10240, 'n');
    struct Case {
        std::string MonitorOptions::*field;
        std::string flag;
        std::vector<std::string> refused;
        std::vector<std::string> literal;  // accepted, and only ever used as the one word or path they are
    };
    std::vector<Case> cases{
        // A name: an HTTP header value and a log word.
        {&MonitorOptions::router_id, "--router_id",
         {"../x", "a/b", "/etc/passwd", nul, "a\nb", "a\rb", "a;reboot", "$(reboot)", "`id`", "a|b", "a b", huge},
         {}},
        // A name under /run/netns, or an absolute path (with no .. and no control character).
        {&MonitorOptions::netns, "--namespace",
         {"../x", "..", "a/b", "/run/netns/../../etc/x", nul, "q\nx", "/run/netns/q\nINFO forged", "q;reboot",
          "$(reboot)", "q r", huge},
         {"/run/netns/qrouter-1", "/proc/1/ns/net"}},
        // The kernel's rule: no /, no :, no whitespace or control character, 1-15 bytes, not . or ..
        {&MonitorOptions::interface, "--monitor_interface",
         {"../etc", "..", "a/b", nul, "ha\nx", "ha x", huge},
         {"ha;reboot", "$(x)"}},
        // Paths the agent chooses: traversal and shell syntax are plain path
        // bytes there (no shell ever sees them); control characters and
        // absurd lengths are refused.
        {&MonitorOptions::conf_dir, "--conf_dir", {nul, "/x\ny", "/x\ry", "/" + huge}, {"/a/../b", "/a/$(x);y"}},
        {&MonitorOptions::pid_file, "--pid_file", {nul, "/x\ny", "/x\ry", "/" + huge}, {"/a/../b.pid", "/a/`id`"}},
        {&MonitorOptions::log_file, "--log_file", {nul, "/x\ny", "/x\ry", "/" + huge}, {"/a/../b.log", "/a;b"}},
        {&MonitorOptions::state_path, "--state_path", {nul, "/x\ny", "/x\ry", "/" + huge}, {"/a/../b", "/a;b"}},
    };
    for (const auto& c : cases) {
        for (const auto& value : c.refused) {
            INFO(c.flag << " " << quote(value));
            auto o = base;
            o.*c.field = value;
            auto ok = validate_monitor_options(o);
            REQUIRE_FALSE(ok);
            CHECK(ok.error().kind == ErrorKind::usage);
            CHECK_THAT(ok.error().message, Catch::Contains(c.flag));
            // The message quotes the value: one printable line, never the value's own bytes.
            CHECK(ok.error().message.find('\n') == std::string::npos);
            CHECK(ok.error().message.find('\r') == std::string::npos);
            CHECK(ok.error().message.size() < 400);
        }
        for (const auto& value : c.literal) {
            INFO(c.flag << " " << quote(value));
            auto o = base;
            o.*c.field = value;
            CHECK(validate_monitor_options(o));
        }
    }
    // Through the command line as the agent passes it, in both spellings.
    for (bool equals : {true, false}) {
        auto args = agent_args(equals);
        if (equals) {
            args.push_back("--router_id=" + huge);
        } else {
            args.emplace_back("--router_id");
            args.push_back("a;reboot");
        }
        auto o = parse(args);
        REQUIRE(o);
        CHECK_FALSE(validate_monitor_options(*o));
    }
}

TEST_CASE("neutron state file: a hard link or a FIFO planted at <conf_dir>/state is replaced, its target untouched",
          "[monitor][files][security]") {
    namespace fs = std::filesystem;
    TempDir tmp;
    fs::create_directory(tmp.path() / "conf");
    UniqueFd dir(::open(tmp.str("conf").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(dir);
    kanotify::test::write_file(tmp.path() / "victim", "root:precious\n");
    fs::create_hard_link(tmp.path() / "victim", tmp.path() / "conf/state");
    REQUIRE(write_neutron_state(dir.get(), "primary"));
    CHECK(read_file(tmp.path() / "conf/state") == "primary");
    CHECK(read_file(tmp.path() / "victim") == "root:precious\n");
    CHECK(fs::hard_link_count(tmp.path() / "victim") == 1);
    fs::remove(tmp.path() / "conf/state");
    REQUIRE(::mkfifo(tmp.str("conf/state").c_str(), 0600) == 0);
    REQUIRE(write_neutron_state(dir.get(), "backup"));  // never opened: replaced
    CHECK(fs::is_regular_file(tmp.path() / "conf/state"));
    CHECK(read_file(tmp.path() / "conf/state") == "backup");
    CHECK(entries_in(tmp.path() / "conf") == 1);
}
