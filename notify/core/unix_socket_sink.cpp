// SPDX-License-Identifier: GPL-2.0-or-later
#include "unix_socket_sink.hpp"

#include <linux/capability.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "effective_capability.hpp"
#include "unique_fd.hpp"

namespace kanotify {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::max<long long>(left, 0));
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    while (true) {
        pollfd p{fd, events, 0};
        int ready = ::poll(&p, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        return ready > 0;
    }
}

AttemptResult failure(std::string error, bool retryable = true) {
    return AttemptResult{false, retryable, std::move(error)};
}

}  // namespace

UnixSocketSink::UnixSocketSink(SocketSettings settings, Sleep sleep)
    : settings_(std::move(settings)), sleep_(std::move(sleep)) {
    if (!sleep_)
        sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

AttemptResult UnixSocketSink::attempt(const std::string& request) const {
    const auto& path = settings_.path;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof address.sun_path)
        return failure(fmt::format("socket path {} is empty or too long", quote(path)), false);
    std::memcpy(address.sun_path, path.data(), path.size());
    auto deadline = Clock::now() + std::chrono::milliseconds(settings_.timeout_ms);

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd)
        return failure(fmt::format("cannot create a socket: {}", std::strerror(errno)));
    int connected = 0;
    {
        // The agent's socket (or its directory) may belong to another user.
        EffectiveCapability raise({CAP_DAC_OVERRIDE});
        connected = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
    }
    if (connected != 0) {
        // A Unix stream socket whose listen backlog is full answers EAGAIN
        // to a non-blocking connect: the agent is busy, not gone.
        int err = errno;
        if (err == EAGAIN) {
            auto full = failure(fmt::format("{}: the listen backlog is full", path));
            full.busy = true;
            return full;
        }
        if (err != EINPROGRESS)
            return failure(fmt::format("cannot connect to {}: {}", path, std::strerror(err)));
        if (!wait_for(fd.get(), POLLOUT, deadline))
            return failure(fmt::format("connecting to {} timed out after {} ms", path, settings_.timeout_ms));
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0)
            return failure(fmt::format("cannot connect to {}: {}", path, std::strerror(so_error)));
    }
    if (settings_.owner_uid >= 0) {
        ucred peer{};
        socklen_t len = sizeof peer;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0)
            return failure(fmt::format("cannot read the credentials of {}: {}", path, std::strerror(errno)), false);
        bool accepted = static_cast<std::int64_t>(peer.uid) == settings_.owner_uid ||
                        (settings_.root_owner_too && peer.uid == 0);
        if (!accepted)
            return failure(fmt::format("refusing {}: the listener runs as uid {} (pid {}), expected uid {}", path,
                                       peer.uid, peer.pid, settings_.owner_uid),
                           false);
    }
    std::string_view rest = request;
    while (!rest.empty()) {
        auto n = ::send(fd.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!wait_for(fd.get(), POLLOUT, deadline))
                return failure(fmt::format("sending to {} timed out after {} ms", path, settings_.timeout_ms));
            continue;
        }
        if (n < 0)
            return failure(fmt::format("cannot send to {}: {}", path, std::strerror(errno)));
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    std::string received;
    char buffer[1024];
    while (true) {
        bool closed = false;
        auto n = ::recv(fd.get(), buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!wait_for(fd.get(), POLLIN, deadline))
                return failure(fmt::format("no answer from {} within {} ms", path, settings_.timeout_ms));
            continue;
        }
        if (n < 0 && errno != ECONNRESET)
            return failure(fmt::format("cannot read the answer of {}: {}", path, std::strerror(errno)));
        if (n <= 0)
            closed = true;
        else
            received.append(buffer, static_cast<std::size_t>(n));
        auto answer = parse_http_status(received, closed);
        if (!answer)
            return failure(fmt::format("{}: {}", path, answer.error().message));
        if (answer->complete) {
            if (answer->status >= 200 && answer->status < 300)
                return AttemptResult{true, false, {}};
            return failure(fmt::format("{} answered {} {}", path, answer->status, answer->reason));
        }
    }
}

DeliveryReport UnixSocketSink::deliver(const Delivery& delivery) const {
    DeliveryReport report;
    auto request = build_http_request(delivery);
    if (!request) {
        report.error = request.error().message;
        return report;
    }
    auto backoff = std::chrono::milliseconds(100);
    for (std::int64_t attempt = 0; attempt <= settings_.retries; ++attempt) {
        if (attempt > 0) {
            sleep_(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
        ++report.attempts;
        auto result = this->attempt(*request);
        if (result.delivered) {
            report.delivered = true;
            report.error.clear();
            return report;
        }
        report.error = result.error;
        if (!result.retryable)
            break;
    }
    return report;
}

}  // namespace kanotify
