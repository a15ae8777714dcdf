// SPDX-License-Identifier: GPL-2.0-or-later
// Least privilege. Run as root (keepalived runs notify scripts as root unless
// script_user says otherwise), kanotify keeps in its permitted set only the
// capabilities its configured actions need (capget/capset, only when
// running as root), and empties its effective set: each use
// raises its capability for the one operation (EffectiveCapability,
// effective_capability.hpp) and lowers it again:
//   CAP_SYS_ADMIN     setns() into an instance's network namespace
//   CAP_NET_RAW       the announcer's packet socket
//   CAP_DAC_OVERRIDE  connecting to an agent's socket that another user owns,
//                     writing a metrics textfile in a directory another user owns
//   CAP_SETUID, CAP_SETGID, CAP_KILL   hooks run as another user, and their
//                     process groups killed at the timeout
//   CAP_SYS_PTRACE    a bus reached through another process's root
//                     (unix:path=/proc/PID/root/...: a container's systemd),
//                     and a namespace given as /proc/PID/ns/net
// The bounding set is left alone on purpose: a hook or conntrackd run as
// root is the user's own program and gets root's capabilities back at exec,
// as it would from keepalived.
#pragma once

#include <string>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/error.hpp"

namespace kanotify {

struct CapabilityNeeds {
    bool enter_namespaces = false;
    bool raw_packets = false;
    bool foreign_files = false;
    bool switch_users = false;
    bool other_roots = false;

    [[nodiscard]] std::vector<unsigned> capabilities() const;
    [[nodiscard]] std::string describe() const;  // "cap_sys_admin,cap_net_raw" or "none"
};

// What the configuration (with the command line's settings merged in) needs.
[[nodiscard]] CapabilityNeeds capabilities_for(const Config& config);

// When the effective uid is 0: permitted set reduced to `needs`, effective
// set emptied (raised around each use from then on; must run before any
// other thread exists, as capability sets belong to a thread and a thread
// started later inherits its creator's). Returns whether anything was
// dropped (false when not root). An
// error leaves the process as it was: the caller logs it and goes on, since
// recording the state matters more than the reduction.
[[nodiscard]] Result<bool> keep_only(const CapabilityNeeds& needs);

}  // namespace kanotify
