// SPDX-License-Identifier: GPL-2.0-or-later
// Network namespaces by name (/run/netns/NAME, as `ip netns` makes them) or
// by path, and descriptors created inside one while the process stays in
// its own namespace for everything else (files, D-Bus, the journal).
#pragma once

#include <functional>
#include <string>

#include "kanotify/error.hpp"
#include "unique_fd.hpp"

namespace kanotify {

// A name: 1-255 bytes of [A-Za-z0-9_.:-], not "." or ".."; or an absolute path.
[[nodiscard]] Result<void> validate_netns(const std::string& netns);
// An interface name: shorter than IFNAMSIZ, no '/', no whitespace, not "." or "..".
[[nodiscard]] Result<void> validate_interface(const std::string& name);

// Runs `body` with the calling thread inside `netns` ("" = where it is) and
// back in its own namespace afterwards, whatever body does. CAP_SYS_ADMIN is
// raised for each setns() alone (and CAP_SYS_PTRACE to open another
// process's /proc/PID/ns/net), so the body runs without them.
[[nodiscard]] Result<void> in_netns(const std::string& netns, const std::function<void()>& body);

// socket(domain, type, protocol) created inside `netns` ("" = our own);
// the calling thread is back in its own namespace when this returns.
[[nodiscard]] Result<UniqueFd> socket_in_netns(const std::string& netns, int domain, int type, int protocol);

// The index of `interface` in the namespace `fd` (any socket) belongs to,
// with SIOCGIFINDEX: no namespace visit, no dump. 0 when the namespace has
// no such interface.
[[nodiscard]] Result<int> interface_index(int fd, const std::string& interface);

}  // namespace kanotify
