// SPDX-License-Identifier: GPL-2.0-or-later
// journald's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL) is one
// datagram of KEY=value lines to /run/systemd/journal/socket. Speaking it
// directly keeps libsystemd, and the half-dozen libraries it pulls in, out
// of the argv front-end: keepalived starts that binary once per transition,
// and loading libsystemd alone costs it more CPU than the whole transition.
#include "log.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include <fmt/format.h>

#include "kanotify/event.hpp"

namespace kanotify {

namespace {

constexpr const char* journal_socket = "/run/systemd/journal/socket";

std::string_view level_name(Level level) {
    switch (level) {
    case Level::error:
        return "error";
    case Level::warning:
        return "warning";
    case Level::notice:
        return "notice";
    case Level::info:
        return "info";
    case Level::debug:
        return "debug";
    }
    return "info";
}

// KEY=value, or the length-prefixed form when the value has a newline.
void append_field(std::string& out, std::string_view key, std::string_view value) {
    out += key;
    if (value.find('\n') == std::string_view::npos) {
        out += '=';
        out += value;
    } else {
        out += '\n';
        auto size = static_cast<std::uint64_t>(value.size());
        for (int i = 0; i < 8; ++i)
            out += static_cast<char>((size >> (8 * i)) & 0xff);
        out += value;
    }
    out += '\n';
}

void write_line(int fd, const std::string& line) {
    // One write per line; nothing to do if it fails (we are the logger).
    (void)!::write(fd, line.data(), line.size());
}

std::string timestamp() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm parts{};
    gmtime_r(&ts.tv_sec, &parts);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &parts);
    return fmt::format("{}.{:06}Z", buffer, ts.tv_nsec / 1000);
}

}  // namespace

std::optional<Level> parse_level(std::string_view name) noexcept {
    for (auto level : {Level::error, Level::warning, Level::notice, Level::info, Level::debug})
        if (level_name(level) == name)
            return level;
    return std::nullopt;
}

Logger::Logger() {
    // journald only when stderr is not a terminal: someone typing a command
    // wants to see its messages.
    if (!::isatty(STDERR_FILENO))
        journal_fd_ = connect_journal();
}

int Logger::connect_journal() {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, journal_socket, sizeof address.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void Logger::set_target(Target target) {
    if (target == Target::stderr_only && journal_fd_ >= 0) {
        ::close(journal_fd_);
        journal_fd_ = -1;
    } else if (target == Target::journal && journal_fd_ < 0) {
        journal_fd_ = connect_journal();
    }
}

Logger::~Logger() {
    if (journal_fd_ >= 0)
        ::close(journal_fd_);
    if (file_fd_ >= 0)
        ::close(file_fd_);
}

Logger& Logger::instance() {
    static Logger logger;
    return logger;
}

Result<void> Logger::configure(Level level, const std::string& log_file) {
    level_ = level;
    if (log_file.empty())
        return {};
    int fd = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return system_error(fmt::format("cannot open log file {}", quote(log_file)), errno);
    if (file_fd_ >= 0)
        ::close(file_fd_);
    file_fd_ = fd;
    return {};
}

void Logger::to_journald(Level level, std::string_view message, std::initializer_list<Field> fields,
                         std::string_view id) {
    std::string datagram;
    append_field(datagram, "MESSAGE", message);
    append_field(datagram, "PRIORITY", fmt::format("{}", static_cast<int>(level)));
    append_field(datagram, "SYSLOG_IDENTIFIER", "kanotify");
    if (!id.empty())
        append_field(datagram, "MESSAGE_ID", id);
    for (const auto& [key, value] : fields)
        append_field(datagram, key, value);
    if (::send(journal_fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL) < 0) {
        // journald gone (or the datagram too big): say it on stderr instead.
        write_line(STDERR_FILENO, fmt::format("kanotify: {}\n", message));
    }
}

void Logger::log(Level level, std::string_view message, std::initializer_list<Field> fields, std::string_view id) {
    if (level > level_)
        return;
    if (journal_fd_ >= 0)
        to_journald(level, message, fields, id);
    else
        write_line(STDERR_FILENO, fmt::format("kanotify: {}: {}\n", level_name(level), message));
    if (file_fd_ >= 0)
        write_line(file_fd_, fmt::format("{} kanotify[{}] {}: {}\n", timestamp(), ::getpid(), level_name(level), message));
}

}  // namespace kanotify
