// SPDX-License-Identifier: GPL-2.0-or-later
// The announcer's integration tests need root, network namespaces, ip and
// tcpdump; without them the program says why and exits 77, which CTest
// reports as skipped (SKIP_RETURN_CODE), never as passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    auto skip = [](const char* why) {
        std::printf("skipped: %s\n", why);
        return 77;
    };
    if (::geteuid() != 0)
        return skip("needs root (it creates network namespaces and raw packet sockets)");
    std::string probe = "PATH=/usr/sbin:/sbin:$PATH; command -v ip >/dev/null && command -v tcpdump >/dev/null";
    if (std::system(probe.c_str()) != 0)
        return skip("needs ip (iproute2) and tcpdump (scripts/deps.sh installs them)");
    std::string ns = "kn-ann-probe-" + std::to_string(::getpid());
    if (std::system(("ip netns add " + ns + " 2>/dev/null && ip netns del " + ns).c_str()) != 0)
        return skip("cannot create a network namespace");
    ::setenv("PATH", ("/usr/sbin:/sbin:" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin")).c_str(), 1);
    return Catch::Session().run(argc, argv);
}
