// SPDX-License-Identifier: GPL-2.0-or-later
// The consumers of one node in the failover storm (scripts/bench/storm.sh):
// a Unix-socket HTTP listener, as a neutron-style agent (answers every
// complete POST with 200), and a D-Bus subscriber to StateChanged on
// org.kanotify.Instance1 on a private bus. Every message is recorded, in
// the order it arrived, as one line of OUT:
//   socket NAME STATE SEQUENCE     a POST whose JSON body named them
//   dbus NAME STATE SEQUENCE       a StateChanged signal
//   bad socket|dbus WHY            anything that could not be read
// Each line is one write(2) on an O_APPEND descriptor, so a reader of OUT
// never sees half a line. Ready (match installed, socket listening) once
// the socket file exists; exits 0 on SIGTERM or SIGINT.
//
//   kanotify_storm_consumer --socket PATH --bus ADDRESS --out FILE
//
// Many clients connect at once (hundreds of notify processes in a storm):
// one poll() loop, non-blocking sockets, a listen backlog of SOMAXCONN, so
// that no client waits on another one's slowness.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cctype>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

volatile sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

int out_fd = -1;

void record(const std::string& line) {
    std::string l = line + "\n";
    if (::write(out_fd, l.data(), l.size()) != static_cast<ssize_t>(l.size()))
        std::perror("storm_consumer: write");
}

// Names and states are short words; anything with a space or a line end
// would break the line format, so it is recorded as bad instead.
bool plain_word(std::string_view s) {
    if (s.empty() || s.size() > 200)
        return false;
    for (char c : s)
        if (c <= ' ' || c == 0x7f)
            return false;
    return true;
}

constexpr std::size_t max_request = 65536;

struct Connection {
    int fd = -1;
    std::string in;
    std::string out;  // the answer still to send
    bool answered = false;
};

// Returns true when the request in `c.in` is complete and handled (its
// answer queued); false when more bytes are needed.
bool handle_request(Connection& c, bool closed) {
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (closed)
            record("bad socket connection closed before the end of the headers");
        return closed;
    }
    std::string_view headers(c.in.data(), end);
    std::size_t length = 0;
    bool have_length = false;
    std::size_t pos = 0;
    while (pos < headers.size()) {
        auto eol = headers.find("\r\n", pos);
        auto line = headers.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        pos = eol == std::string_view::npos ? headers.size() : eol + 2;
        constexpr std::string_view key = "content-length:";
        if (line.size() > key.size()) {
            std::string lower(line.substr(0, key.size()));
            for (auto& ch : lower)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (lower == key) {
                length = std::strtoul(std::string(line.substr(key.size())).c_str(), nullptr, 10);
                have_length = true;
            }
        }
    }
    if (!have_length) {
        record("bad socket request without Content-Length");
        c.out = "HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n\r\n";
        return true;
    }
    if (c.in.size() < end + 4 + length) {
        if (closed)
            record("bad socket connection closed before the end of the body");
        return closed;
    }
    auto body = c.in.substr(end + 4, length);
    auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("name") || !json["name"].is_string() ||
        !json.contains("state") || !json["state"].is_string()) {
        record("bad socket body " + std::to_string(body.size()) + " bytes without a name and a state");
        c.out = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        return true;
    }
    auto name = json["name"].get<std::string>();
    auto state = json["state"].get<std::string>();
    std::uint64_t sequence = 0;
    if (json.contains("sequence") && json["sequence"].is_number_unsigned())
        sequence = json["sequence"].get<std::uint64_t>();
    if (!plain_word(name) || !plain_word(state)) {
        record("bad socket name or state with spaces");
    } else {
        record("socket " + name + " " + state + " " + std::to_string(sequence));
    }
    c.out = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    return true;
}

int on_state_changed(sd_bus_message* m, void*, sd_bus_error*) {
    const char* name = nullptr;
    const char* state = nullptr;
    const char* previous = nullptr;
    std::uint32_t priority = 0;
    std::uint64_t sequence = 0;
    int r = sd_bus_message_read(m, "sssut", &name, &state, &previous, &priority, &sequence);
    if (r < 0) {
        const char* signature = sd_bus_message_get_signature(m, 1);
        record(std::string("bad dbus StateChanged of signature ") + (signature ? signature : "?"));
        return 0;
    }
    if (!plain_word(name) || !plain_word(state))
        record("bad dbus name or state with spaces");
    else
        record(std::string("dbus ") + name + " " + state + " " + std::to_string(sequence));
    return 0;
}

int usage() {
    std::fprintf(stderr, "usage: kanotify_storm_consumer --socket PATH --bus ADDRESS --out FILE\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket_path, bus_address, out_path;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view flag = argv[i];
        if (flag == "--socket")
            socket_path = argv[i + 1];
        else if (flag == "--bus")
            bus_address = argv[i + 1];
        else if (flag == "--out")
            out_path = argv[i + 1];
        else
            return usage();
    }
    if (argc % 2 != 1 || socket_path.empty() || bus_address.empty() || out_path.empty())
        return usage();
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof address.sun_path) {
        std::fprintf(stderr, "storm_consumer: socket path too long: %s\n", socket_path.c_str());
        return 2;
    }
    std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);

    out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out_fd < 0) {
        std::fprintf(stderr, "storm_consumer: %s: %s\n", out_path.c_str(), std::strerror(errno));
        return 1;
    }
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    // The subscription first: once the socket exists, both consumers listen.
    sd_bus* bus = nullptr;
    int r = sd_bus_new(&bus);
    if (r >= 0)
        r = sd_bus_set_address(bus, bus_address.c_str());
    if (r >= 0)
        r = sd_bus_set_bus_client(bus, 1);
    if (r >= 0)
        r = sd_bus_start(bus);
    if (r >= 0)
        r = sd_bus_add_match(bus, nullptr,
                             "type='signal',interface='org.kanotify.Instance1',member='StateChanged'",
                             on_state_changed, nullptr);
    if (r < 0) {
        std::fprintf(stderr, "storm_consumer: D-Bus %s: %s\n", bus_address.c_str(), std::strerror(-r));
        return 1;
    }

    ::unlink(socket_path.c_str());
    int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener, SOMAXCONN) != 0) {
        std::fprintf(stderr, "storm_consumer: %s: %s\n", socket_path.c_str(), std::strerror(errno));
        return 1;
    }

    std::vector<Connection> connections;
    std::vector<pollfd> fds;
    while (!stop_requested) {
        fds.clear();
        fds.push_back({listener, POLLIN, 0});
        int bus_fd = sd_bus_get_fd(bus);
        int bus_events = sd_bus_get_events(bus);
        fds.push_back({bus_fd, static_cast<short>(bus_events < 0 ? 0 : bus_events), 0});
        for (auto& c : connections)
            fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
        // sd-bus's timeout is absolute (CLOCK_MONOTONIC); 0 means work is
        // already queued.
        std::uint64_t until = 0;
        int timeout = 200;
        if (sd_bus_get_timeout(bus, &until) >= 0 && until != UINT64_MAX) {
            timespec now{};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            auto now_us = static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
                          static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
            auto left_ms = until > now_us ? (until - now_us + 999) / 1000 : 0;
            timeout = static_cast<int>(std::min<std::uint64_t>(left_ms, 200));
        }
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
            std::perror("storm_consumer: poll");
            return 1;
        }
        while ((r = sd_bus_process(bus, nullptr)) > 0) {
        }
        if (r < 0) {
            std::fprintf(stderr, "storm_consumer: D-Bus connection lost: %s\n", std::strerror(-r));
            record("bad dbus connection lost");
            return 1;
        }
        // Existing connections (fds[2..] match connections[0..]).
        for (std::size_t i = 0; i < connections.size(); ++i) {
            auto& c = connections[i];
            auto revents = fds[i + 2].revents;
            if (revents == 0)
                continue;
            if (c.out.empty()) {
                char buffer[4096];
                auto n = ::recv(c.fd, buffer, sizeof buffer, 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                bool closed = n <= 0;
                if (n > 0)
                    c.in.append(buffer, static_cast<std::size_t>(n));
                if (c.in.size() > max_request) {
                    // No request of kanotify's or curl's is this big.
                    record("bad socket request over " + std::to_string(max_request) + " bytes");
                    c.answered = true;
                    continue;
                }
                if (handle_request(c, closed) && c.out.empty())
                    c.answered = true;  // closed without a request: nothing to answer
                if (closed && !c.out.empty())
                    c.answered = true;  // the client is gone: no answer can reach it
            } else {
                auto n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (n <= 0 || static_cast<std::size_t>(n) == c.out.size())
                    c.answered = true;
                else
                    c.out.erase(0, static_cast<std::size_t>(n));
            }
        }
        std::erase_if(connections, [](const Connection& c) {
            if (c.answered)
                ::close(c.fd);
            return c.answered;
        });
        // New connections: all that are waiting.
        if (fds[0].revents & POLLIN) {
            while (true) {
                int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break;
                connections.push_back(Connection{fd, {}, {}, false});
            }
        }
    }
    // Signals already queued on the bus connection are recorded before exit.
    while (sd_bus_process(bus, nullptr) > 0) {
    }
    sd_bus_flush_close_unref(bus);
    ::close(listener);
    ::unlink(socket_path.c_str());
    return 0;
}
