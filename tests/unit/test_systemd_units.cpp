// SPDX-License-Identifier: GPL-2.0-or-later
// systemd units: escaping of instance names, unit-name validation, which
// state asks for what, and the configuration's checks.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include "kanotify/config.hpp"
#include "systemd_units.hpp"

using namespace kanotify;

namespace {

// The real systemd-escape, when the machine has it.
std::optional<std::string> systemd_escape_tool(const std::string& text) {
    for (const char* path : {"/usr/bin/systemd-escape", "/bin/systemd-escape"}) {
        if (::access(path, X_OK) != 0)
            continue;
        int out[2];
        if (::pipe(out) != 0)
            return std::nullopt;
        pid_t pid = ::fork();
        if (pid == 0) {
            ::dup2(out[1], 1);
            ::close(out[0]);
            ::close(out[1]);
            ::execl(path, path, "--", text.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(out[1]);
        std::string result;
        std::array<char, 512> buffer{};
        ssize_t n;
        while ((n = ::read(out[0], buffer.data(), buffer.size())) > 0)
            result.append(buffer.data(), static_cast<std::size_t>(n));
        ::close(out[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return std::nullopt;
        if (!result.empty() && result.back() == '\n')
            result.pop_back();
        return result;
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("systemd units: instance names are escaped as systemd-escape does", "[units]") {
    CHECK(systemd_escape("VI_1") == "VI_1");
    CHECK(systemd_escape("vrrp-ext.1:a") == "vrrp\\x2dext.1:a");
    CHECK(systemd_escape(".hidden") == "\\x2ehidden");
    CHECK(systemd_escape("a/b") == "a-b");
    CHECK(systemd_escape("sp ace") == "sp\\x20ace");
    CHECK(master_target_for("VI-1") == "kanotify-master@VI\\x2d1.target");
    // Every character an instance name may hold, against the real tool.
    bool compared = false;
    for (std::string name : {"VI_1", "a-b-c", ".lead", "x:y.z", "A-Z_0-9.:-", "-", "..", "ends."}) {
        auto real = systemd_escape_tool(name);
        if (!real)
            break;
        compared = true;
        INFO("name " << name);
        CHECK(systemd_escape(name) == *real);
    }
    if (!compared)
        WARN("systemd-escape is not installed: compared with the documented rules only");
}

TEST_CASE("systemd units: MASTER starts, BACKUP FAULT STOP and DELETED stop, events ask nothing", "[units]") {
    CHECK(unit_action_for(State::master) == UnitAction::start);
    for (auto state : {State::backup, State::fault, State::stop, State::deleted})
        CHECK(unit_action_for(state) == UnitAction::stop);
    for (auto state : {State::master_rx_lower_pri, State::master_priority, State::backup_priority})
        CHECK_FALSE(unit_action_for(state));
}

TEST_CASE("systemd units: unit names are checked before anything is sent to systemd", "[units]") {
    for (const char* good : {"haproxy.service", "kanotify-master@VI_1.target", "getty@tty1.service",
                             "a\\x2db.socket", "run-x.mount", "x.timer"})
        CHECK(validate_unit_name(good));
    for (const char* bad : {"", "haproxy", "haproxy.exe", "a b.service", "../x.service", "x;reboot.service",
                            "tmpl@.service", "@x.service", "a@b@c.service", ".service", "x.service\n"}) {
        INFO("unit " << bad);
        auto r = validate_unit_name(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::invalid);
    }
    CHECK_FALSE(validate_unit_name(std::string(250, 'a') + ".service"));
}

TEST_CASE("systemd units: the configuration refuses a bad unit name and a bad bus", "[units][config]") {
    auto bad_unit = parse_config("[instance.VI_1]\nunits = [\"ok.service\", \"rm -rf.service\"]\n", "t.toml");
    REQUIRE_FALSE(bad_unit);
    CHECK(bad_unit.error().message.find("rm -rf.service") != std::string::npos);
    auto good = parse_config("[systemd]\nbus = \"unix:path=/run/x\"\ntimeout_ms = 500\n"
                             "[instance.VI_1]\nunits = [\"a.service\", \"b.target\"]\ntarget = true\n",
                             "t.toml");
    REQUIRE(good);
    CHECK(good->for_instance("VI_1").systemd.bus == "unix:path=/run/x");
    CHECK(good->for_instance("VI_1").systemd.timeout_ms == 500);
    CHECK(good->not_yet_acted_on.empty());
    CHECK_FALSE(parse_config("[systemd]\nbus = \"session\"\n", "t.toml"));
}
