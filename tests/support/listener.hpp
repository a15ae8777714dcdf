// SPDX-License-Identifier: GPL-2.0-or-later
// A real Unix-socket listener for the socket sink's tests, misbehaving on
// request: absent, refusing, backlog full, 500, hanging, LF-only, closing
// early. It reads each request with a single recv(4096), as neutron's agent.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kanotify::test {

enum class Behaviour { ok, ok_lf_only, status_500, hang, close_early };

class Listener {
  public:
    explicit Listener(std::string path) : path_(std::move(path)) {}
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    ~Listener() { stop(); }

    // A socket file with nobody listening: connect() gets ECONNREFUSED.
    void refuse() {
        stop();
        fd_ = bound();
    }

    // Listening with a backlog of 1 that is already full, never accepting.
    void full_backlog() {
        stop();
        fd_ = bound();
        ::listen(fd_, 1);
        while (true) {
            int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (::connect(c, address(), sizeof(sockaddr_un)) != 0) {
                ::close(c);
                break;
            }
            fillers_.push_back(c);
        }
    }

    // Starts afresh: what earlier behaviours received is forgotten.
    // (The newest neutron agent listens with a backlog of 5.)
    void serve(Behaviour behaviour, int backlog = 16) {
        stop();
        clear();
        fd_ = bound();
        ::listen(fd_, backlog);
        behaviour_ = behaviour;
        running_ = true;
        thread_ = std::thread([this] { loop(); });
    }

    void stop() {
        running_ = false;
        if (thread_.joinable())
            thread_.join();
        for (int c : fillers_)
            ::close(c);
        fillers_.clear();
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
        ::unlink(path_.c_str());
    }

    [[nodiscard]] std::vector<std::string> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    void clear() {
        std::lock_guard lock(mutex_);
        requests_.clear();
    }

  private:
    const sockaddr* address() {
        std::memset(&address_, 0, sizeof address_);
        address_.sun_family = AF_UNIX;
        std::strncpy(address_.sun_path, path_.c_str(), sizeof address_.sun_path - 1);
        return reinterpret_cast<const sockaddr*>(&address_);
    }
    int bound() {
        ::unlink(path_.c_str());
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::bind(fd, address(), sizeof(sockaddr_un)) != 0)
            throw std::runtime_error("cannot bind the test listener");
        return fd;
    }
    void loop() {
        std::vector<int> hung;
        while (running_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            char buffer[4096];
            auto n = ::recv(c, buffer, sizeof buffer, 0);  // one read, like neutron's agent
            if (n > 0) {
                std::lock_guard lock(mutex_);
                requests_.emplace_back(buffer, static_cast<std::size_t>(n));
            }
            const char* answer = nullptr;
            switch (behaviour_) {
            case Behaviour::ok:
                answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                break;
            case Behaviour::ok_lf_only:
                answer = "HTTP/1.1 200 OK\n";
                break;
            case Behaviour::status_500:
                answer = "HTTP/1.1 500 Internal Server Error\r\n\r\n";
                break;
            case Behaviour::hang:
                hung.push_back(c);
                continue;
            case Behaviour::close_early:
                break;
            }
            if (answer)
                (void)!::send(c, answer, std::strlen(answer), MSG_NOSIGNAL);
            ::close(c);
        }
        for (int c : hung)
            ::close(c);
    }

    std::string path_;
    sockaddr_un address_{};
    int fd_ = -1;
    std::vector<int> fillers_;
    std::atomic<bool> running_{false};
    Behaviour behaviour_ = Behaviour::ok;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> requests_;
};

}  // namespace kanotify::test
