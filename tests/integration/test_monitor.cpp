// SPDX-License-Identifier: GPL-2.0-or-later
// `kanotify monitor` as the neutron L3 agent runs it: a real network
// namespace with veth pairs, addresses added and removed with `ip addr`,
// a real Unix-socket listener answering as the agent does, the state file
// and the log file read back. Needs root and `ip netns`; the program exits
// 77 (CTest: skipped) when it cannot create a namespace.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "foreign_listener.hpp"
#include "listener.hpp"
#include "process.hpp"

using namespace kanotify::test;
using namespace std::chrono_literals;

namespace {

const std::string router = "3f1c2d4e-0000-4000-8000-0000000000aa";

// Runs a program with an argument vector (PATH lookup), output discarded.
int sh(const std::vector<std::string>& argv) {
    pid_t child = ::fork();
    if (child == 0) {
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return wait_status(child);
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done())
            return true;
        std::this_thread::sleep_for(5ms);
    }
    return done();
}

std::string header(const std::string& request, const std::string& name) {
    auto at = request.find("\r\n" + name + ": ");
    if (at == std::string::npos)
        return {};
    at += name.size() + 4;
    return request.substr(at, request.find("\r\n", at) - at);
}

// A namespace of our own with veth pairs; removed with everything in it.
class Netns {
  public:
    Netns() : name_(fmt::format("kntmon-{}-{}", ::getpid(), counter()++)) {
        if (sh({"ip", "netns", "add", name_}) != 0)
            throw std::runtime_error("cannot create a network namespace");
    }
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;
    ~Netns() { (void)sh({"ip", "netns", "del", name_}); }
    [[nodiscard]] const std::string& name() const { return name_; }
    void veth(const std::string& a, const std::string& b) {
        REQUIRE(ip({"link", "add", a, "type", "veth", "peer", "name", b}) == 0);
        REQUIRE(ip({"link", "set", a, "up"}) == 0);
        REQUIRE(ip({"link", "set", b, "up"}) == 0);
    }
    int ip(std::vector<std::string> args) const {
        args.insert(args.begin(), {"ip", "-n", name_});
        return sh(args);
    }
    void add(const std::string& cidr, const std::string& dev) const { REQUIRE(ip({"addr", "add", cidr, "dev", dev}) == 0); }
    void del(const std::string& cidr, const std::string& dev) const { REQUIRE(ip({"addr", "del", cidr, "dev", dev}) == 0); }

  private:
    static std::atomic<int>& counter() {
        static std::atomic<int> n{0};
        return n;
    }
    std::string name_;
};

// One monitor with its own conf_dir, pid file and log, spawned as the agent
// spawns it; SIGKILLed if a test leaves it running.
struct Monitor {
    TempDir& tmp;
    std::string id;
    std::string conf_dir, pid_file, log_file;
    pid_t pid = -1;

    Monitor(TempDir& t, std::string router_id) : tmp(t), id(std::move(router_id)) {
        conf_dir = tmp.str("ha_confs-" + id);
        std::filesystem::create_directories(conf_dir);
        pid_file = tmp.str(id + ".monitor.pid");
        log_file = conf_dir + "/neutron-keepalived-state-change.log";
    }
    ~Monitor() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            (void)wait_status(pid);
        }
    }
    std::vector<std::string> flags(const std::string& netns, const std::string& dev, const std::string& cidr,
                                   bool equals) const {
        std::vector<std::pair<std::string, std::string>> f = {
            {"--router_id", id},       {"--conf_dir", conf_dir},          {"--log-file", log_file},
            {"--monitor_interface", dev}, {"--monitor_cidr", cidr},       {"--pid_file", pid_file},
            {"--state_path", tmp.str()}, {"--user", std::to_string(::geteuid())},
            {"--group", std::to_string(::getegid())}};
        if (!netns.empty())
            f.insert(f.begin() + 1, {"--namespace", netns});
        std::vector<std::string> out;
        for (auto& [k, v] : f) {
            if (equals) {
                out.push_back(k + "=" + v);
            } else {
                out.push_back(k);
                out.push_back(v);
            }
        }
        return out;
    }
    void start(std::vector<std::string> argv, const std::vector<std::string>& env = {}) {
        pid = spawn(argv, tmp.str(id + ".out"), tmp.str(id + ".err"), env);
    }
    void start(const std::string& netns, const std::string& dev, const std::string& cidr, bool equals = false,
               std::vector<std::string> extra = {}, const std::vector<std::string>& env = {}) {
        std::vector<std::string> argv{KANOTIFY_BINARY, "monitor"};
        auto f = flags(netns, dev, cidr, equals);
        argv.insert(argv.end(), f.begin(), f.end());
        argv.insert(argv.end(), extra.begin(), extra.end());
        start(argv, env);
    }
    [[nodiscard]] std::string state() const { return read_file(conf_dir + "/state"); }
    [[nodiscard]] std::string log() const { return read_file(log_file); }
    // Sends SIGTERM; the exit status and how long it took.
    std::pair<int, std::chrono::milliseconds> terminate() {
        auto start = std::chrono::steady_clock::now();
        ::kill(pid, SIGTERM);
        int status = wait_status(pid);
        pid = -1;
        return {status, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
    }
};

// What the agent heard, per router, in order.
struct Agent {
    Listener& listener;
    [[nodiscard]] std::vector<std::string> states(const std::string& id) {
        std::vector<std::string> out;
        for (const auto& r : listener.requests())
            if (header(r, "X-Neutron-Router-Id") == id)
                out.push_back(header(r, "X-Neutron-State"));
        return out;
    }
    [[nodiscard]] std::string last(const std::string& id) {
        auto s = states(id);
        return s.empty() ? std::string() : s.back();
    }
    bool wait_count(const std::string& id, std::size_t n, std::chrono::milliseconds limit = 5000ms) {
        return wait_until([&] { return states(id).size() >= n; }, limit);
    }
};

}  // namespace

TEST_CASE("monitor: initial backup, add gives primary, delete gives backup, unrelated changes give nothing",
          "[monitor][netns]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    ns.veth("qr-t", "qr-p");
    Monitor m(tmp, router);
    m.start(ns.name(), "ha-t", "169.254.0.1/24");

    REQUIRE(agent.wait_count(router, 1));
    CHECK(agent.states(router) == std::vector<std::string>{"backup"});
    CHECK(m.state() == "backup");
    CHECK_THAT(m.log(), Catch::Contains("Initial status of router " + router + " is backup"));
    CHECK_THAT(m.log(), Catch::Contains("Wrote router " + router + " state backup"));
    // The line follows the agent's answer, which comes after the request
    // the test saw: wait for it rather than race it.
    CHECK(wait_until(
        [&] { return m.log().find("Notified agent router " + router + ", state backup") != std::string::npos; }));
    auto requests = listener.requests();
    REQUIRE(requests.size() == 1);
    CHECK_THAT(requests[0], Catch::StartsWith("POST / HTTP/1.1\r\n"));

    // The pid file holds the monitor's pid, and its command line the pid
    // file's path (the agent's liveness check).
    REQUIRE(wait_until([&] { return read_file(m.pid_file) == std::to_string(m.pid); }));
    CHECK_THAT(read_file(fmt::format("/proc/{}/cmdline", m.pid)), Catch::Contains(m.pid_file));

    // Backup: the same IP as /32, the VIP on another device, other addresses.
    ns.add("169.254.0.1/32", "ha-t");
    ns.add("169.254.0.1/24", "qr-t");
    ns.add("10.9.0.1/24", "ha-t");
    ns.del("169.254.0.1/32", "ha-t");
    ns.del("169.254.0.1/24", "qr-t");

    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(agent.wait_count(router, 2));
    CHECK(agent.states(router) == std::vector<std::string>{"backup", "primary"});
    CHECK(m.state() == "primary");
    CHECK(wait_until(
        [&] { return m.log().find("Notified agent router " + router + ", state primary") != std::string::npos; }));

    // Primary: the same again, nothing moves.
    ns.add("169.254.0.1/32", "ha-t");
    ns.del("169.254.0.1/32", "ha-t");
    ns.add("169.254.0.1/24", "qr-t");
    ns.del("169.254.0.1/24", "qr-t");
    ns.del("10.9.0.1/24", "ha-t");
    std::this_thread::sleep_for(300ms);
    CHECK(agent.states(router).size() == 2);
    CHECK(m.state() == "primary");

    ns.del("169.254.0.1/24", "ha-t");
    REQUIRE(agent.wait_count(router, 3));
    CHECK(agent.last(router) == "backup");
    CHECK(m.state() == "backup");

    // Flapping add, del, add: it ends primary, in the file and at the agent.
    ns.add("169.254.0.1/24", "ha-t");
    ns.del("169.254.0.1/24", "ha-t");
    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(wait_until([&] { return agent.last(router) == "primary" && m.state() == "primary"; }));
    std::this_thread::sleep_for(200ms);
    CHECK(agent.last(router) == "primary");

    // The HA device deleted: backup.
    REQUIRE(ns.ip({"link", "del", "ha-t"}) == 0);
    REQUIRE(wait_until([&] { return agent.last(router) == "backup"; }));
    CHECK(m.state() == "backup");

    // Re-created with the VIP on it: primary again.
    ns.veth("ha-t", "ha-p");
    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(wait_until([&] { return agent.last(router) == "primary"; }));

    auto [status, took] = m.terminate();
    CHECK(status == 0);
    CHECK(took < 1000ms);
    CHECK_FALSE(std::filesystem::exists(m.pid_file));
}

TEST_CASE("monitor: initial primary, --flag=value, started inside the namespace as neutron-keepalived-state-change",
          "[monitor][netns]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok_lf_only);  // the newest agent's bare answer
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    ns.add("fd00:aa::1/64", "ha-t");
    auto link = tmp.str("neutron-keepalived-state-change");
    std::filesystem::create_symlink(KANOTIFY_BINARY, link);
    Monitor m(tmp, router);
    // As older agents: ip netns exec, no --namespace, --flag=value.
    std::vector<std::string> argv{"/usr/sbin/ip", "netns", "exec", ns.name(), link};
    auto f = m.flags("", "ha-t", "fd00:aa::1/64", true);
    argv.insert(argv.end(), f.begin(), f.end());
    argv.emplace_back("--config-file=/etc/neutron/neutron.conf");  // ignored, as upstream
    m.start(argv);
    REQUIRE(agent.wait_count(router, 1));
    CHECK(agent.states(router) == std::vector<std::string>{"primary"});
    CHECK(m.state() == "primary");
    CHECK_THAT(m.log(), Catch::Contains("Initial status of router " + router + " is primary"));
    // `ip netns exec` execs: the pid file holds the very process the agent started.
    CHECK(read_file(m.pid_file) == std::to_string(m.pid));
    ns.del("fd00:aa::1/64", "ha-t");
    REQUIRE(agent.wait_count(router, 2));
    CHECK(agent.last(router) == "backup");
    auto [status, took] = m.terminate();
    CHECK(status == 0);
    CHECK(took < 10000ms);
}

TEST_CASE("monitor: an invalid cidr gives the timeout line, then backup", "[monitor][netns]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    Monitor m(tmp, router);
    m.start(ns.name(), "ha-t", "169.254.0.300/24");
    REQUIRE(agent.wait_count(router, 1));
    CHECK(agent.states(router) == std::vector<std::string>{"backup"});
    CHECK(m.state() == "backup");
    auto log = m.log();
    CHECK_THAT(log, Catch::Contains("Timeout reading the initial status of router " + router));
    CHECK_THAT(log, Catch::Contains("Initial status of router " + router + " is backup"));
    CHECK(log.find("Timeout reading") < log.find("Initial status"));
    CHECK(m.terminate().first == 0);
}

TEST_CASE("monitor: a namespace that does not exist gives the timeout line, then backup, and SIGTERM still works",
          "[monitor][netns]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Monitor m(tmp, router);
    m.start("kntmon-absent", "ha-t", "169.254.0.1/24", false, {"--initial_timeout_ms", "300"});
    REQUIRE(agent.wait_count(router, 1));
    CHECK(agent.last(router) == "backup");
    CHECK_THAT(m.log(), Catch::Contains("Timeout reading the initial status of router " + router));
    auto [status, took] = m.terminate();
    CHECK(status == 0);
    CHECK(took < 2000ms);
}

TEST_CASE("monitor: the agent's socket absent during a change gets the latest state and every later one",
          "[monitor][netns][retry]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    Monitor m(tmp, router);
    m.start(ns.name(), "ha-t", "169.254.0.1/24");
    REQUIRE(agent.wait_count(router, 1));

    listener.stop();  // the agent restarts: no socket at all
    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(wait_until([&] { return m.state() == "primary"; }));
    ns.del("169.254.0.1/24", "ha-t");
    ns.add("169.254.0.1/24", "ha-t");
    std::this_thread::sleep_for(300ms);
    listener.refuse();  // the socket file is back before anyone listens
    std::this_thread::sleep_for(300ms);
    listener.serve(Behaviour::status_500);  // then an agent that fails
    std::this_thread::sleep_for(300ms);
    listener.serve(Behaviour::ok);
    REQUIRE(agent.wait_count(router, 1, 8000ms));
    CHECK(agent.states(router) == std::vector<std::string>{"primary"});  // the latest, once
    CHECK_THAT(m.log(), Catch::Contains("failed"));
    ns.del("169.254.0.1/24", "ha-t");
    REQUIRE(agent.wait_count(router, 2));
    CHECK(agent.last(router) == "backup");
    CHECK(m.terminate().first == 0);
}

TEST_CASE("monitor: a listener that never answers does not delay SIGTERM past 10 s", "[monitor][netns][retry]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::hang);
    Netns ns;
    ns.veth("ha-t", "ha-p");
    Monitor m(tmp, router);
    m.start(ns.name(), "ha-t", "169.254.0.1/24");
    REQUIRE(wait_until([&] { return m.state() == "backup"; }));
    std::this_thread::sleep_for(500ms);  // inside an attempt that will time out
    auto [status, took] = m.terminate();
    CHECK(status == 0);
    CHECK(took < 3000ms);
}

TEST_CASE("monitor: a listener with backlog 5 and many routers changing at once gets every router's last state",
          "[monitor][netns][burst]") {
    constexpr int routers = 100;
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok, 5);
    Agent agent{listener};
    Netns ns;
    std::vector<std::unique_ptr<Monitor>> monitors;
    std::string batch;
    for (int i = 0; i < routers; ++i) {
        auto dev = fmt::format("ha-{}", i);
        REQUIRE(ns.ip({"link", "add", dev, "type", "veth", "peer", "name", fmt::format("hp-{}", i)}) == 0);
        auto id = fmt::format("3f1c2d4e-0000-4000-8000-{:012}", i);
        monitors.push_back(std::make_unique<Monitor>(tmp, id));
        monitors.back()->start(ns.name(), dev, "169.254.0.1/24");
        batch += fmt::format("addr add 169.254.0.1/24 dev {}\n", dev);
    }
    REQUIRE(wait_until([&] { return listener.requests().size() >= routers; }, 20000ms));
    write_file(tmp.path() / "add.batch", batch);
    REQUIRE(ns.ip({"-batch", tmp.str("add.batch")}) == 0);
    auto all = [&](const std::string& state) {
        for (const auto& m : monitors)
            if (agent.last(m->id) != state)
                return false;
        return true;
    };
    CHECK(wait_until([&] { return all("primary"); }, 30000ms));
    std::string del;
    for (int i = 0; i < routers; ++i)
        del += fmt::format("addr del 169.254.0.1/24 dev ha-{}\n", i);
    write_file(tmp.path() / "del.batch", del);
    REQUIRE(ns.ip({"-batch", tmp.str("del.batch")}) == 0);
    CHECK(wait_until([&] { return all("backup"); }, 30000ms));
    for (auto& m : monitors)
        CHECK(m->state() == "backup");
    for (auto& m : monitors)
        CHECK(m->terminate().first == 0);
}

TEST_CASE("monitor: stdout and stderr pipes nobody reads, still working after 1,000 changes",
          "[monitor][netns][pipes]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    Monitor m(tmp, router);
    int out[2], err[2];
    REQUIRE(::pipe(out) == 0);
    REQUIRE(::pipe(err) == 0);
    // No --log-file: every log line goes to the stderr pipe, which fills.
    std::vector<std::string> argv{KANOTIFY_BINARY, "monitor", "--debug"};
    for (auto& f : m.flags(ns.name(), "ha-t", "169.254.0.1/24", false))
        if (f != "--log-file" && f != m.log_file)
            argv.push_back(f);
    m.pid = ::fork();
    if (m.pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    REQUIRE(agent.wait_count(router, 1));
    for (int i = 0; i < 500; ++i) {
        ns.add("169.254.0.1/24", "ha-t");
        REQUIRE(agent.wait_count(router, static_cast<std::size_t>(2 + 2 * i)));
        ns.del("169.254.0.1/24", "ha-t");
        REQUIRE(agent.wait_count(router, static_cast<std::size_t>(3 + 2 * i)));
    }
    CHECK(agent.states(router).size() == 1001);
    CHECK(agent.last(router) == "backup");
    auto [status, took] = m.terminate();
    CHECK(status == 0);
    CHECK(took < 1000ms);
    ::close(out[0]);
    ::close(err[0]);
}

TEST_CASE("monitor: conntrackd runs inside the namespace with neutron's options, failures logged and ignored",
          "[monitor][netns][conntrackd]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    // A recording conntrackd first on PATH: its arguments, its network
    // namespace, and a failure on -f.
    auto bin = tmp.str("bin");
    std::filesystem::create_directories(bin);
    auto record = tmp.str("conntrackd.calls");
    write_file(bin + "/conntrackd",
               "#!/bin/sh\n"
               "echo \"$* $(readlink /proc/self/ns/net) leaked:$(ls -l /proc/$$/fd | grep -c -e socket: -e signalfd -e 'net:\\[')\" >> " +
                   record + "\n"
               "printf '%s\\n' \"$2\" >> " + record + ".conf\n"
               "[ \"$3\" = -f ] && { echo 'cannot flush' >&2; exit 1; }\n"
               "exit 0\n");
    ::chmod((bin + "/conntrackd").c_str(), 0755);
    Monitor m(tmp, router);
    // Shell metacharacters in --conf_dir reach conntrackd as one literal
    // word: no shell ever sees them (a shell would create the files).
    m.conf_dir = tmp.str("ha confs;touch pwned1;$(touch pwned2)`touch pwned3`|touch pwned4");
    std::filesystem::create_directories(m.conf_dir);
    m.log_file = m.conf_dir + "/neutron-keepalived-state-change.log";
    std::string path = "PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin";
    m.start(ns.name(), "ha-t", "169.254.0.1/24", false, {"--enable_conntrackd"}, {path});
    REQUIRE(agent.wait_count(router, 1));
    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(agent.wait_count(router, 2));
    CHECK(agent.last(router) == "primary");

    struct stat nsstat{};
    REQUIRE(::stat(("/run/netns/" + ns.name()).c_str(), &nsstat) == 0);
    auto inside = fmt::format("net:[{}]", nsstat.st_ino);
    auto conf = "-C " + m.conf_dir + "/conntrackd.conf ";
    auto calls = read_file(record);
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < calls.size();) {
        auto nl = calls.find('\n', at);
        lines.push_back(calls.substr(at, nl - at));
        at = nl + 1;
    }
    REQUIRE(lines.size() == 6);
    const char* expected[] = {"-t", "-n", "-c", "-f", "-R", "-B"};
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK_THAT(lines[i], Catch::StartsWith(conf + expected[i] + " " + inside));
        // None of the monitor's sockets, signalfd or namespace handle.
        CHECK_THAT(lines[i], Catch::EndsWith(" leaked:0"));
    }
    std::string six_times;
    for (int i = 0; i < 6; ++i)
        six_times += m.conf_dir + "/conntrackd.conf\n";
    CHECK(read_file(record + ".conf") == six_times);  // each time exactly one argument
    for (const char* pwned : {"pwned1", "pwned2", "pwned3", "pwned4"}) {
        CHECK_FALSE(std::filesystem::exists(tmp.path() / pwned));
        CHECK_FALSE(std::filesystem::exists(std::filesystem::current_path() / pwned));
    }
    auto log = m.log();
    CHECK_THAT(log, Catch::Contains("Synced connection tracking state on backup for router " + router));
    CHECK_THAT(log, Catch::Contains("Synced connection tracking state on primary for router " + router));
    CHECK_THAT(log, Catch::Contains("cannot flush"));
    CHECK(m.terminate().first == 0);
}

TEST_CASE("monitor: --user and --group are honoured once the netlink sockets exist", "[monitor][netns][user]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    Monitor m(tmp, router);
    // As on a node: the agent's socket and conf_dir belong to its user.
    ::chmod(tmp.str().c_str(), 0755);
    ::chmod(tmp.str("keepalived-state-change").c_str(), 0666);
    REQUIRE(::chown(m.conf_dir.c_str(), 65534, 65534) == 0);
    std::vector<std::string> argv{KANOTIFY_BINARY, "monitor"};
    for (auto& f : m.flags(ns.name(), "ha-t", "169.254.0.1/24", true)) {
        if (f.starts_with("--user="))
            f = "--user=65534";
        if (f.starts_with("--group="))
            f = "--group=65534";
        argv.push_back(f);
    }
    m.start(argv);
    REQUIRE(agent.wait_count(router, 1));
    auto status = read_file(fmt::format("/proc/{}/status", m.pid));
    CHECK_THAT(status, Catch::Contains("Uid:\t65534\t65534\t65534\t65534"));
    CHECK_THAT(status, Catch::Contains("Gid:\t65534\t65534\t65534\t65534"));
    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(agent.wait_count(router, 2));
    CHECK(agent.last(router) == "primary");
    CHECK(m.state() == "primary");
    CHECK(m.terminate().first == 0);
}

TEST_CASE("monitor: a listener run by another user at the agent's socket path gets nothing, the agent then the state",
          "[monitor][netns][security]") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root to run a listener as another uid");
        return;
    }
    TempDir tmp;
    ::chmod(tmp.str().c_str(), 0777);  // anyone could create the path first
    Listener listener(tmp.str("keepalived-state-change"));
    Agent agent{listener};
    auto socket_path = tmp.str("keepalived-state-change");
    auto received = tmp.str("rogue.received");
    ForeignListener rogue(socket_path, 65534, received);
    REQUIRE(rogue.started());
    Netns ns;
    ns.veth("ha-t", "ha-p");
    Monitor m(tmp, router);
    m.start(ns.name(), "ha-t", "169.254.0.1/24");  // --user is our own uid, 0
    bool refused = wait_until([&] { return m.log().find("runs as uid 65534") != std::string::npos; });
    rogue.stop();
    CHECK(refused);
    CHECK_FALSE(std::filesystem::exists(received));  // not one byte
    CHECK(m.state() == "backup");  // recorded all the same
    // The real agent takes its path back: the retry brings it the state.
    ::unlink(socket_path.c_str());
    listener.serve(Behaviour::ok);
    REQUIRE(agent.wait_count(router, 1, 8000ms));
    CHECK(agent.last(router) == "backup");
    CHECK(m.terminate().first == 0);
}

TEST_CASE("monitor: bad command lines are refused before anything starts", "[monitor]") {
    TempDir tmp;
    auto r = run(tmp, {KANOTIFY_BINARY, "monitor", "--router_id", router});
    CHECK(r.status == 64);
    CHECK_THAT(r.err, Catch::Contains("--monitor_interface"));
    r = run(tmp, {KANOTIFY_BINARY, "monitor", "--router_id=x", "--monitor_interface=ha", "--monitor_cidr=1.2.3.4",
                  "--conf_dir=/x", "--pid_file=/x/p", "--state_path=/x", "--enable_conntrackd=perhaps"});
    CHECK(r.status == 64);
    CHECK_THAT(r.err, Catch::Contains("--enable_conntrackd"));
}

TEST_CASE("monitor: addresses added to other interfaces are announced while primary, not while backup",
          "[monitor][netns][announce]") {
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Agent agent{listener};
    Netns ns;
    ns.veth("ha-t", "ha-p");
    ns.veth("qr-t", "qr-p");
    Monitor m(tmp, router);
    m.start(ns.name(), "ha-t", "169.254.0.1/24", false, {"--announce_non_ha_addresses"});
    REQUIRE(agent.wait_count(router, 1));
    // Backup: nothing is announced.
    ns.add("10.30.0.1/24", "qr-t");
    std::this_thread::sleep_for(300ms);
    CHECK_THAT(m.log(), !Catch::Contains("Announced"));

    ns.add("169.254.0.1/24", "ha-t");
    REQUIRE(agent.wait_count(router, 2));
    // The peer of qr-t hears the gratuitous ARP for the address added now.
    auto capture = tmp.str("arp.txt");
    pid_t tcpdump = spawn({"/usr/sbin/ip", "netns", "exec", ns.name(), "tcpdump", "-n", "-l", "-c", "1", "-i", "qr-p",
                           "arp and host 10.20.0.1"},
                          capture, tmp.str("tcpdump.err"));
    REQUIRE(wait_until([&] { return read_file(tmp.str("tcpdump.err")).find("listening") != std::string::npos; }));
    ns.add("10.20.0.1/24", "qr-t");
    CHECK(wait_until([&] { return read_file(capture).find("10.20.0.1") != std::string::npos; }));
    ::kill(tcpdump, SIGTERM);
    (void)wait_status(tcpdump);
    REQUIRE(wait_until([&] { return m.log().find("Announced 10.20.0.1 on qr-t") != std::string::npos; }));
    CHECK_THAT(m.log(), Catch::Contains("Announced 10.20.0.1 on qr-t for router " + router + ": sent"));
    CHECK_THAT(m.log(), !Catch::Contains("Announced 10.30.0.1"));
    CHECK(m.terminate().first == 0);
}

namespace {

// The exit status if `pid` ends within `limit`, else -1 (still running).
int exit_within(pid_t& pid, std::chrono::milliseconds limit) {
    int status = -1;
    bool ended = wait_until(
        [&] {
            int raw = 0;
            if (::waitpid(pid, &raw, WNOHANG) != pid)
                return false;
            status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
            return true;
        },
        limit);
    if (ended)
        pid = -1;
    return ended ? status : -1;
}

}  // namespace

TEST_CASE("monitor: links and FIFOs planted at the pid file, the log file and --conf_dir are never written through",
          "[monitor][netns][security]") {
    // The monitor starts as root; the agent's user owns the directories of
    // all three. What was recorded before (the state file, the log's
    // earlier lines) must survive every attempt.
    namespace fs = std::filesystem;
    TempDir tmp;
    Listener listener(tmp.str("keepalived-state-change"));
    listener.serve(Behaviour::ok);
    Netns ns;
    ns.veth("ha-t", "ha-p");
    write_file(tmp.path() / "victim", "root:precious\n");
    // `links`: the planted hard link is still there when it was refused.
    auto victim_intact = [&](std::uintmax_t links = 1) {
        CHECK(read_file(tmp.path() / "victim") == "root:precious\n");
        CHECK(fs::hard_link_count(tmp.path() / "victim") == links);
    };
    Monitor m(tmp, router);
    write_file(m.conf_dir + "/state", "primary");       // recorded by an earlier monitor
    write_file(m.log_file, "an earlier line\n");

    SECTION("a hard link at --log-file: refused before anything is written") {
        fs::remove(m.log_file);
        fs::create_hard_link(tmp.path() / "victim", m.log_file);
        m.start(ns.name(), "ha-t", "169.254.0.1/24");
        CHECK(exit_within(m.pid, 5000ms) == 71);
        CHECK_THAT(read_file(tmp.str(router + ".err")), Catch::Contains("links (a planted hard link?)"));
        CHECK(m.state() == "primary");
        CHECK_FALSE(fs::exists(m.pid_file));
        victim_intact(2);
    }
    SECTION("a symlink at --log-file: refused before anything is written") {
        fs::remove(m.log_file);
        fs::create_symlink(tmp.path() / "victim", m.log_file);
        m.start(ns.name(), "ha-t", "169.254.0.1/24");
        CHECK(exit_within(m.pid, 5000ms) == 71);
        CHECK_THAT(read_file(tmp.str(router + ".err")), Catch::Contains("symlink"));
        CHECK(m.state() == "primary");
        victim_intact();
    }
    SECTION("a symlink at --conf_dir: refused, the directory it points to untouched") {
        fs::create_directory(tmp.path() / "elsewhere");
        write_file(tmp.path() / "elsewhere/state", "primary");
        auto real = m.conf_dir;
        m.conf_dir = tmp.str("conf-link");
        fs::create_directory_symlink(tmp.path() / "elsewhere", m.conf_dir);
        m.start(ns.name(), "ha-t", "169.254.0.1/24");
        CHECK(exit_within(m.pid, 5000ms) == 71);
        CHECK_THAT(read_file(m.log_file), Catch::Contains("a symlink is refused"));
        CHECK_THAT(read_file(m.log_file), Catch::StartsWith("an earlier line\n"));
        CHECK(read_file(tmp.path() / "elsewhere/state") == "primary");
        CHECK(read_file(real + "/state") == "primary");
        CHECK_FALSE(fs::exists(m.pid_file));
    }
    SECTION("a hard link, a symlink or a FIFO at --pid_file: replaced by the monitor's own file") {
        for (int kind = 0; kind < 3; ++kind) {
            INFO("planted: " << (kind == 0 ? "hard link" : kind == 1 ? "symlink" : "FIFO"));
            fs::remove(m.pid_file);
            if (kind == 0)
                fs::create_hard_link(tmp.path() / "victim", m.pid_file);
            else if (kind == 1)
                fs::create_symlink(tmp.path() / "victim", m.pid_file);
            else
                REQUIRE(::mkfifo(m.pid_file.c_str(), 0644) == 0);
            m.start(ns.name(), "ha-t", "169.254.0.1/24");
            // No VIP on ha-t: the monitor records backup once it runs.
            REQUIRE(wait_until([&] { return m.state() == "backup"; }));
            REQUIRE(wait_until([&] { return read_file(m.pid_file) == std::to_string(m.pid); }));
            CHECK(fs::is_regular_file(fs::symlink_status(m.pid_file)));
            victim_intact();
            CHECK(m.terminate().first == 0);
            CHECK_FALSE(fs::exists(fs::symlink_status(m.pid_file)));
            CHECK_THAT(m.log(), Catch::StartsWith("an earlier line\n"));  // appended to, never truncated
            write_file(m.conf_dir + "/state", "primary");
        }
        victim_intact();
    }
}
