// SPDX-License-Identifier: GPL-2.0-or-later
// The announcer's AF_PACKET sockets, one per network namespace for a batch
// of transitions, closed off the dispatch path.
//
// Why: closing a packet socket waits for an RCU grace period (the kernel's
// packet_release() calls synchronize_net(), whatever the socket did). That
// is 5-15 ms measured on the benchmark machine, and it used to sit between
// a MASTER's first frame and its state file: every announced transition
// was recorded that much later, and a FIFO batch of N MASTERs paid it N
// times over. Now the sessions of one batch share one socket per namespace
// (a socket is not bound to an interface: each frame names its interface
// index), and when the batch ends its sockets are closed on a short-lived
// thread of their own, which nobody waits for. An argv invocation exits
// right after; the kernel closes whatever is left at exit.
//
// A socket is never kept beyond its batch: one held open would keep its
// namespace alive after `ip netns del` (neutron deletes a router's
// namespace with the router), with the devices in it.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <utility>

#include "kanotify/error.hpp"
#include "unique_fd.hpp"

namespace kanotify {

class PacketSockets {
  public:
    PacketSockets() = default;
    ~PacketSockets();
    PacketSockets(const PacketSockets&) = delete;
    PacketSockets& operator=(const PacketSockets&) = delete;

    // The socket of the namespace the calling thread is in now, created
    // (CAP_NET_RAW raised for the creation alone) on first use.
    [[nodiscard]] Result<std::shared_ptr<const UniqueFd>> here();

  private:
    // A namespace's identity: the device and inode of its nsfs file. A
    // socket held here keeps its namespace alive, so the inode cannot be
    // reused by another namespace while the entry exists.
    std::map<std::pair<dev_t, ino_t>, std::shared_ptr<const UniqueFd>> sockets_;
};

// Closes `fds` on a detached thread (serially: each may wait for a grace
// period); closes them here when no thread can be started.
void close_in_background(std::vector<std::shared_ptr<const UniqueFd>> fds);

}  // namespace kanotify
