// SPDX-License-Identifier: GPL-2.0-or-later
// A consumer for the end-to-end tests: a real Unix-socket listener that
// answers every request as neutron's agent does (one recv of at most 4096
// bytes, then "200 OK") and appends what it was told, one line per request
// in the order received: "NAME STATE SEQUENCE", or "malformed" for a request
// whose JSON body it could not read. Runs until SIGTERM or SIGINT.
//
//   kanotify_test_consumer SOCKET OUTPUT
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

namespace {

volatile std::sig_atomic_t stopping = 0;

void on_signal(int) { stopping = 1; }

std::string describe(const std::string& request) {
    auto body = request.find("\r\n\r\n");
    if (body == std::string::npos)
        return "malformed";
    auto json = nlohmann::json::parse(request.substr(body + 4), nullptr, false);
    if (json.is_discarded() || !json.contains("name") || !json.contains("state") || !json.contains("sequence"))
        return "malformed";
    return json["name"].get<std::string>() + " " + json["state"].get<std::string>() + " " +
           std::to_string(json["sequence"].get<std::uint64_t>());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s SOCKET OUTPUT\n", argv[0]);
        return 2;
    }
    struct sigaction action {};
    action.sa_handler = on_signal;  // no SA_RESTART: poll returns EINTR
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    std::FILE* out = std::fopen(argv[2], "a");
    if (!out) {
        std::fprintf(stderr, "cannot open %s: %s\n", argv[2], std::strerror(errno));
        return 1;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (std::strlen(argv[1]) >= sizeof address.sun_path) {
        std::fprintf(stderr, "socket path too long: %s\n", argv[1]);
        return 2;
    }
    std::strcpy(address.sun_path, argv[1]);
    ::unlink(argv[1]);
    int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener, 64) != 0) {
        std::fprintf(stderr, "cannot listen on %s: %s\n", argv[1], std::strerror(errno));
        return 1;
    }
    const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    while (!stopping) {
        pollfd p{listener, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0)
            continue;
        int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char buffer[4096];
        auto n = ::recv(c, buffer, sizeof buffer, 0);  // one read, like neutron's agent
        if (n > 0) {
            // Recorded before answering: once the sender has its 200, the
            // line is on record.
            std::fprintf(out, "%s\n", describe(std::string(buffer, static_cast<std::size_t>(n))).c_str());
            std::fflush(out);
            (void)!::send(c, answer, sizeof answer - 1, MSG_NOSIGNAL);
        }
        ::close(c);
    }
    ::close(listener);
    ::unlink(argv[1]);
    std::fclose(out);
    return 0;
}
