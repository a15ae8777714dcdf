// SPDX-License-Identifier: GPL-2.0-or-later
// A rogue listener: a child process that switches to another uid, listens
// at a socket path before the real agent does, and counts the bytes that
// reach it into a file. For the tests that show such a listener gets
// nothing (SO_PEERCRED checks). Needs root; killed when it goes out of scope.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "temp_dir.hpp"

namespace kanotify::test {

class ForeignListener {
  public:
    // Returns once the socket exists (or after 2 s: the test then finds it
    // absent). `received` is created only when a byte arrives.
    ForeignListener(const std::string& path, uid_t uid, const std::string& received) {
        pid_ = ::fork();
        if (pid_ == 0)
            serve(path, uid, received);
        for (int i = 0; i < 200 && pid_ > 0 && ::access(path.c_str(), F_OK) != 0; ++i)
            ::usleep(10000);
    }
    ForeignListener(const ForeignListener&) = delete;
    ForeignListener& operator=(const ForeignListener&) = delete;
    ~ForeignListener() { stop(); }

    [[nodiscard]] bool started() const noexcept { return pid_ > 0; }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = -1;
    }

  private:
    [[noreturn]] static void serve(const std::string& path, uid_t uid, const std::string& received) {
        if (::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0)
            ::_exit(2);
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 4) != 0)
            ::_exit(3);
        std::size_t got = 0;
        while (true) {
            int c = ::accept(fd, nullptr, nullptr);
            char buffer[4096];
            auto n = ::recv(c, buffer, sizeof buffer, 0);
            if (n > 0) {
                got += static_cast<std::size_t>(n);
                write_file(received, std::to_string(got));
            }
            ::close(c);
        }
    }

    pid_t pid_ = -1;
};

}  // namespace kanotify::test
