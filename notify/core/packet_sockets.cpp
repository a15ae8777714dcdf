// SPDX-License-Identifier: GPL-2.0-or-later
#include "packet_sockets.hpp"

#include <linux/capability.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "effective_capability.hpp"

namespace kanotify {

Result<std::shared_ptr<const UniqueFd>> PacketSockets::here() {
    struct stat ns {};
    // /proc/thread-self: network namespaces belong to threads, and the
    // caller has entered the instance's on this thread only.
    if (::stat("/proc/thread-self/ns/net", &ns) != 0)
        return system_error("cannot identify the current network namespace", errno);
    auto key = std::make_pair(ns.st_dev, ns.st_ino);
    if (auto found = sockets_.find(key); found != sockets_.end())
        return found->second;
    // Protocol 0: the socket only sends; nothing is ever queued to it.
    // Sending needs no capability: CAP_NET_RAW is raised for the creation.
    int fd = -1;
    {
        EffectiveCapability raise({CAP_NET_RAW});
        fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        return system_error("cannot open a packet socket", errno);
    auto socket = std::make_shared<const UniqueFd>(fd);
    sockets_.emplace(key, socket);
    return socket;
}

PacketSockets::~PacketSockets() {
    if (sockets_.empty())
        return;
    try {
        std::vector<std::shared_ptr<const UniqueFd>> fds;
        for (auto& [key, socket] : sockets_)
            fds.push_back(std::move(socket));
        close_in_background(std::move(fds));
    } catch (const std::bad_alloc&) {
        // No memory for the hand-over: what is left closes here.
    }
}

void close_in_background(std::vector<std::shared_ptr<const UniqueFd>> fds) {
    // The thread starts with every signal blocked (a signal the caller
    // defers must not be taken by it) and the caller's mask is put back.
    sigset_t all, previous;
    sigfillset(&all);
    bool masked = ::pthread_sigmask(SIG_SETMASK, &all, &previous) == 0;
    try {
        std::thread([fds = std::move(fds)]() mutable { fds.clear(); }).detach();
    } catch (const std::system_error&) {
        // No thread: the closure holding the sockets was destroyed with the
        // exception, so they were closed here, late rather than never.
    }
    if (masked)
        (void)::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

}  // namespace kanotify
