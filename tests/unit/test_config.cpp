// SPDX-License-Identifier: GPL-2.0-or-later
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "kanotify/config.hpp"
#include "kanotify/event.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::TempDir;
using kanotify::test::write_file;

namespace {

// Every key DESIGN.md lists, with non-default values.
constexpr const char* full = R"(
state_dir = "/srv/kanotify"
neutron_state_names = "legacy"

[log]
file = "/var/log/kanotify.log"
level = "debug"

[garp]
mode = "both"
count = 3
interval_ms = 100
delay_ms = 50
refresh_s = 60
rate_pps = 200

[dbus]
bus = "unix:path=/run/test-bus"
signal = false
destination = "org.example.Agent"
timeout_ms = 1000
retries = 2

[socket]
path = "/run/agent.sock"
owner_uid = 0
timeout_ms = 3000
retries = 4

[conntrackd]
enabled = true
config = "/etc/conntrackd/conntrackd.conf"

[metrics]
textfile = "/var/lib/node_exporter/kanotify.prom"

[hooks]
master = [["/usr/local/sbin/promote", "--fast"], ["/usr/bin/logger", "master"]]
backup = []
any = [["/usr/bin/true"]]
timeout_ms = 5000
coalesce = false
keepalived_args = true
user = "nobody"

[systemd]
bus = "system"
timeout_ms = 10000

[journal]
max_bytes = 65536
keep = 2

[fifo]
grace_ms = 300
checker_lines = false

[instance.VI_1]
namespace = "qrouter-1"
interface = "eth0"
addresses = ["10.0.0.100/24", "2001:db8::1/64"]
router_id = "abc"
units = ["haproxy.service"]
target = true

[instance.VI_1.garp]
count = 9
)";

}  // namespace

TEST_CASE("config: every documented key is read", "[config]") {
    auto config = parse_config(full, "test.toml");
    REQUIRE(config);
    CHECK(config->state_dir == "/srv/kanotify");
    CHECK(config->neutron_state_names == "legacy");
    CHECK(config->log_file == "/var/log/kanotify.log");
    CHECK(config->log_level == "debug");
    CHECK(config->defaults.garp.mode == "both");
    CHECK(config->defaults.garp.count == 3);
    CHECK(config->defaults.garp.rate_pps == 200);
    CHECK(config->defaults.dbus.bus == "unix:path=/run/test-bus");
    CHECK_FALSE(config->defaults.dbus.signal);
    CHECK(config->defaults.socket.owner_uid == 0);
    CHECK(config->defaults.conntrackd.enabled);
    CHECK(config->metrics_textfile == "/var/lib/node_exporter/kanotify.prom");
    REQUIRE(config->defaults.hooks.by_state["master"].size() == 2);
    CHECK(config->defaults.hooks.by_state["master"][0] == Argv{"/usr/local/sbin/promote", "--fast"});
    CHECK(config->defaults.hooks.keepalived_args);
    CHECK_FALSE(config->defaults.hooks.coalesce);
    CHECK(config->journal.max_bytes == 65536);
    CHECK(config->fifo.grace_ms == 300);
    CHECK_FALSE(config->fifo.checker_lines);

    const auto& vi1 = config->for_instance("VI_1");
    CHECK(vi1.netns == "qrouter-1");
    CHECK(vi1.interface == "eth0");
    CHECK(vi1.addresses.size() == 2);
    CHECK(vi1.units == std::vector<std::string>{"haproxy.service"});
    CHECK(vi1.target);
    // An instance inherits the global tables and overrides per key.
    CHECK(vi1.garp.count == 9);
    CHECK(vi1.garp.mode == "both");
    CHECK(vi1.dbus.destination == "org.example.Agent");
    // An instance without a table gets the global settings.
    CHECK(config->for_instance("VI_2").garp.count == 3);
    // What this version reads but does not act on yet is listed, not hidden.
    const auto& later = config->not_yet_acted_on;
    // [garp] (the announcer, its refresh included) and systemd units are acted on.
    for (const char* setting : {"[garp]", "[garp] refresh_s", "instance.VI_1 [garp]", "[systemd]",
                                "instance.VI_1 units", "instance.VI_1 target"})
        CHECK(std::find(later.begin(), later.end(), setting) == later.end());
    CHECK(vi1.garp.enabled);
    CHECK(config->defaults.garp.enabled);
    CHECK(parse_config("state_dir = \"/x\"\n[journal]\nkeep = 2\n[metrics]\ntextfile = \"/x.prom\"\n", "t")
              ->not_yet_acted_on.empty());
}

TEST_CASE("config: an empty file gives the documented defaults", "[config]") {
    auto config = parse_config("", "empty.toml");
    REQUIRE(config);
    CHECK(config->state_dir == "/var/lib/kanotify");
    CHECK(config->defaults.garp.mode == "request");
    CHECK(config->defaults.garp.count == 5);
    CHECK_FALSE(config->defaults.garp.enabled);  // no [garp] table: no announcement
    CHECK(config->defaults.dbus.bus == "system");
    CHECK(config->defaults.socket.retries == 5);
    CHECK(config->defaults.hooks.timeout_ms == 30000);
    CHECK(config->fifo.grace_ms == 1500);
}

TEST_CASE("config: mistakes are errors that name the key", "[config]") {
    struct Case {
        const char* text;
        const char* says;
    };
    for (const auto& c : std::vector<Case>{
             {"stat_dir = \"/x\"", "\"stat_dir\" is not a known setting"},
             {"[garp]\ncount = \"5\"", "\"count\" must be an integer"},
             {"[garp]\ncount = -1", "must be between"},
             {"[garp]\nmode = \"shout\"", "unknown value \"shout\""},
             {"[dbus]\nbus = \"session\"", "must be \"system\""},
             {"[hooks]\nmaster = [\"/bin/true\"]", "must be an array of argument vectors"},
             {"[hooks]\nmaster = [[\"true\"]]", "absolute path"},
             {"[hooks]\nmaster = [[]]", "absolute path"},
             {"[hooks]\nmastr = []", "\"mastr\" is not a known setting"},
             {"[instance.\"../x\"]\ninterface = \"eth0\"", "contains \"/\""},
             {"[instance.VI_1]\ninterfce = \"eth0\"", "\"interfce\" is not a known setting"},
             {"[instance.VI_1.garp]\ncount = true", "must be an integer"},
             {"instance = 3", "instance"},
             {"garp = 3", "must be a table"},
             {"state_dir = \"relative\"", "absolute path"},
             {"state_dir = ", "test.toml:1"},
             {"[log]\nlevel = \"loud\"", "unknown value"},
             {"# caf\xc3\xa9\nstate_dir = \"/x\"", "test.toml:1: byte 0xc3: the configuration must be ASCII"},
             {"a = 1 \xc2\xa7", "must be ASCII"},
             {"[fifo]\ngrace_ms = 5000", "between 0 and 1800"},
             {"[instance.VI_1]\nrouter_id = \"a\\r\\nX-Evil: 1\"", "router_id"},
             {"[socket]\npath = \"relative.sock\"", "must be absolute"},
             {"[dbus]\ndestination = \"no dots; rm\"", "not a D-Bus bus name"},
         }) {
        INFO(c.text);
        auto config = parse_config(c.text, "test.toml");
        REQUIRE_FALSE(config);
        CHECK(config.error().kind == ErrorKind::config);
        CHECK_THAT(config.error().message, Catch::Contains(c.says));
    }
}

TEST_CASE("config: loading a file, a missing file, an insecure file", "[config][security]") {
    TempDir tmp;
    auto path = tmp.str("kanotify.toml");

    LoadOptions options;
    options.path = path;
    auto missing = load_config(options);
    REQUIRE(missing);  // the default path may be absent
    CHECK(missing->state_dir == "/var/lib/kanotify");
    options.required = true;  // an explicit --config must exist
    CHECK_FALSE(load_config(options));

    write_file(path, "state_dir = \"/tmp/x\"\n");
    ::chmod(path.c_str(), 0644);
    auto plain = load_config(options);
    REQUIRE(plain);
    CHECK(plain->state_dir == "/tmp/x");

    options.enforce_owner = true;
    ::chmod(path.c_str(), 0666);
    auto writable = load_config(options);
    REQUIRE_FALSE(writable);
    CHECK_THAT(writable.error().message, Catch::Contains("refusing configuration"));
    ::chmod(path.c_str(), 0620);
    CHECK_FALSE(load_config(options));
    ::chmod(path.c_str(), 0644);
    if (::geteuid() == 0) {
        CHECK(load_config(options));
        REQUIRE(::chown(path.c_str(), 65534, 0) == 0);
        auto foreign = load_config(options);
        REQUIRE_FALSE(foreign);
        CHECK_THAT(foreign.error().message, Catch::Contains("owner uid 65534"));
    } else {
        CHECK_FALSE(load_config(options));  // owned by us, not by root
    }
}

TEST_CASE("config: ../, /, NUL, newline, shell metacharacters and 10 KiB in instance names, namespaces, "
          "interfaces, addresses and router ids are refused",
          "[config][security]") {
    const std::string huge(10240, 'n');
    // TOML spellings of each class, as a quoted key or a basic string.
    const std::vector<std::string> names{"../x",   "..",        "a/b",      "/etc/passwd", "a\\u0000b", "a\\nb",
                                         "a\\rb",  "a;reboot",  "$(reboot)", "`id`",       "a b",       huge};
    std::vector<std::string> texts;
    for (const auto& n : names) {
        texts.push_back("[instance.\"" + n + "\"]\ninterface = \"eth0\"\n");
        texts.push_back("[instance.VI_1]\nrouter_id = \"" + n + "\"\n");
    }
    for (const auto& n : {std::string("../x"), std::string(".."), std::string("a/b"),
                          std::string("/run/netns/../../etc/x"), std::string("a\\u0000b"), std::string("q\\nx"),
                          std::string("/run/netns/q\\nforged"), std::string("q;reboot"), std::string("$(reboot)"),
                          std::string("q r"), huge})
        texts.push_back("[instance.VI_1]\nnamespace = \"" + n + "\"\n");
    for (const auto& n : {std::string("../etc"), std::string(".."), std::string("a/b"), std::string("eth\\u00000"),
                          std::string("eth\\n0"), std::string("eth 0"), huge})
        texts.push_back("[instance.VI_1]\ninterface = \"" + n + "\"\n");
    for (const auto& n : {std::string("../10.0.0.1"), std::string("10.0.0.1/../24"), std::string("10.0.0.1\\u0000"),
                          std::string("10.0.0.1\\n"), std::string("10.0.0.1;reboot"), std::string("$(reboot)"),
                          std::string(10240, '1')})
        texts.push_back("[instance.VI_1]\naddresses = [\"" + n + "\"]\n");
    for (const auto& text : texts) {
        INFO(quote(text));
        auto config = parse_config(text, "test.toml");
        REQUIRE_FALSE(config);
        CHECK(config.error().kind == ErrorKind::config);
        CHECK_THAT(config.error().message, Catch::StartsWith("test.toml"));
        // Quoted: one printable line however the value was made.
        CHECK(config.error().message.find('\n') == std::string::npos);
        CHECK(config.error().message.find('\0') == std::string::npos);
        CHECK(config.error().message.size() < 600);
    }
}
