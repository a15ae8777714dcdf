// SPDX-License-Identifier: GPL-2.0-or-later
// The monitor's tests need root and `ip netns`: without them the program
// exits 77, which CTest reports as skipped (never as passed).
#define CATCH_CONFIG_RUNNER
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

bool can_make_namespaces() {
    if (::geteuid() != 0)
        return false;
    auto name = "kntmon-probe-" + std::to_string(::getpid());
    auto add = "ip netns add " + name + " >/dev/null 2>&1";
    if (std::system(add.c_str()) != 0)
        return false;
    auto del = "ip netns del " + name + " >/dev/null 2>&1";
    (void)std::system(del.c_str());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    // Test discovery lists the cases and needs neither.
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]).starts_with("--list"))
            return Catch::Session().run(argc, argv);
    if (!can_make_namespaces()) {
        std::puts("skipped: the monitor's tests need root and `ip netns add`");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
