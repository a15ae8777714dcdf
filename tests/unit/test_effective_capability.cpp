// SPDX-License-Identifier: GPL-2.0-or-later
// EffectiveCapability: nothing at all unless keep_only() emptied the
// effective set; then exactly the named, permitted capabilities for the
// scope's lifetime. The real path changes capability sets, so it runs in a
// forked child (sets belong to a thread; the test process keeps its own).
#include <catch2/catch.hpp>

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

#include "effective_capability.hpp"

using namespace kanotify;

namespace {

constexpr std::uint64_t bit(unsigned cap) {
    return std::uint64_t{1} << cap;
}

bool set_thread_sets(std::uint64_t permitted, std::uint64_t effective) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    data[0].permitted = static_cast<std::uint32_t>(permitted);
    data[1].permitted = static_cast<std::uint32_t>(permitted >> 32);
    data[0].effective = static_cast<std::uint32_t>(effective);
    data[1].effective = static_cast<std::uint32_t>(effective >> 32);
    return ::syscall(SYS_capset, &header, data) == 0;
}

// Runs `body` in a child; its exit status is the number of the first check
// that failed (0: all passed).
template <typename Body>
int in_child(Body body) {
    pid_t child = ::fork();
    if (child == 0)
        ::_exit(body());
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("effective capability: without keep_only nothing is raised and no set changes", "[privileges]") {
    REQUIRE_FALSE(effective_on_demand());
    auto before = thread_capabilities();
    {
        EffectiveCapability raise({CAP_NET_RAW, CAP_SYS_ADMIN});
        CHECK_FALSE(raise.raised());
        auto during = thread_capabilities();
        CHECK(during.effective == before.effective);
        CHECK(during.permitted == before.permitted);
    }
    CHECK(thread_capabilities().effective == before.effective);
}

TEST_CASE("effective capability: raises only the named permitted capabilities, for the scope alone",
          "[privileges]") {
    auto mine = thread_capabilities();
    if ((mine.permitted & (bit(CAP_NET_RAW) | bit(CAP_SYS_ADMIN) | bit(CAP_KILL))) !=
        (bit(CAP_NET_RAW) | bit(CAP_SYS_ADMIN) | bit(CAP_KILL))) {
        WARN("skipped: needs CAP_NET_RAW, CAP_SYS_ADMIN and CAP_KILL in the permitted set (run as root)");
        return;
    }
    int failed = in_child([] {
        // What keep_only() leaves: the needs permitted, nothing effective.
        if (!set_thread_sets(bit(CAP_NET_RAW) | bit(CAP_SYS_ADMIN), 0))
            return 1;
        set_effective_on_demand(true);
        {
            EffectiveCapability raise({CAP_NET_RAW});
            if (!raise.raised() || thread_capabilities().effective != bit(CAP_NET_RAW))
                return 2;
            {
                // Nested: adds its own, gives back only its own.
                EffectiveCapability inner({CAP_SYS_ADMIN, CAP_NET_RAW});
                if (thread_capabilities().effective != (bit(CAP_NET_RAW) | bit(CAP_SYS_ADMIN)))
                    return 3;
                // Already raised: nothing to do.
                EffectiveCapability again({CAP_NET_RAW});
                if (again.raised())
                    return 4;
            }
            if (thread_capabilities().effective != bit(CAP_NET_RAW))
                return 5;
        }
        if (thread_capabilities().effective != 0)
            return 6;
        {
            // Not permitted (CAP_KILL was dropped): nothing raised, no error.
            EffectiveCapability raise({CAP_KILL});
            if (raise.raised() || thread_capabilities().effective != 0)
                return 7;
        }
        if (thread_capabilities().permitted != (bit(CAP_NET_RAW) | bit(CAP_SYS_ADMIN)))
            return 8;
        return 0;
    });
    CHECK(failed == 0);
}
