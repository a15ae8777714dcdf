// SPDX-License-Identifier: GPL-2.0-or-later
#include "kanotify/event.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <ctime>
#include <utility>

#include <fmt/format.h>

namespace kanotify {

namespace {

struct StateName {
    State state;
    std::string_view upper;
    std::string_view lower;
};

constexpr std::array<StateName, 8> state_names{{
    {State::master, "MASTER", "master"},
    {State::backup, "BACKUP", "backup"},
    {State::fault, "FAULT", "fault"},
    {State::stop, "STOP", "stop"},
    {State::deleted, "DELETED", "deleted"},
    {State::master_rx_lower_pri, "MASTER_RX_LOWER_PRI", "master_rx_lower_pri"},
    {State::master_priority, "MASTER_PRIORITY", "master_priority"},
    {State::backup_priority, "BACKUP_PRIORITY", "backup_priority"},
}};

// Locale-independent: isalnum() would follow LC_CTYPE.
constexpr bool is_name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

}  // namespace

std::string_view to_string(Kind kind) noexcept {
    return kind == Kind::group ? "GROUP" : "INSTANCE";
}

std::string_view to_string(State state) noexcept {
    for (const auto& entry : state_names)
        if (entry.state == state)
            return entry.upper;
    return "UNKNOWN";
}

std::string_view to_string(Source source) noexcept {
    switch (source) {
    case Source::argv:
        return "argv";
    case Source::fifo:
        return "fifo";
    case Source::preload:
        return "preload";
    case Source::monitor:
        return "monitor";
    }
    return "unknown";
}

std::optional<Kind> parse_kind(std::string_view word) noexcept {
    if (word == "INSTANCE")
        return Kind::instance;
    if (word == "GROUP")
        return Kind::group;
    return std::nullopt;
}

std::optional<State> parse_state(std::string_view word) noexcept {
    for (const auto& entry : state_names)
        if (entry.upper == word)
            return entry.state;
    return std::nullopt;
}

std::optional<State> parse_state_flag(std::string_view word) noexcept {
    for (const auto& entry : state_names)
        if (entry.upper == word || entry.lower == word)
            return entry.state;
    return std::nullopt;
}

bool is_recorded_state(State state) noexcept {
    switch (state) {
    case State::master:
    case State::backup:
    case State::fault:
    case State::stop:
    case State::deleted:
        return true;
    case State::master_rx_lower_pri:
    case State::master_priority:
    case State::backup_priority:
        return false;
    }
    return false;
}

Result<void> validate_name(std::string_view name) {
    if (name.empty())
        return make_error(ErrorKind::invalid, "empty instance or group name");
    if (name.size() > max_name_length)
        return make_error(ErrorKind::invalid, fmt::format("name {} is {} bytes long, the limit is {}",
                                                          quote(name), name.size(), max_name_length));
    for (char c : name)
        if (!is_name_char(c))
            return make_error(ErrorKind::invalid,
                              fmt::format("name {} contains {}: names are made of A-Z a-z 0-9 _ . : -",
                                          quote(name), quote(std::string_view(&c, 1))));
    // Not a traversal risk once ".state" is appended, but never a sane
    // instance name either, and it would read as one in every path we log.
    if (name.find("..") != std::string_view::npos)
        return make_error(ErrorKind::invalid, fmt::format("name {} contains \"..\"", quote(name)));
    return {};
}

Result<std::uint8_t> parse_priority(std::string_view word) {
    unsigned value = 0;
    const char* first = word.data();
    const char* last = word.data() + word.size();
    // from_chars accepts no sign and no spaces for unsigned; insist on digits
    // only and at most three of them so "0x10" or "1e2" cannot sneak through.
    if (word.empty() || word.size() > 3 || word.front() < '0' || word.front() > '9')
        return make_error(ErrorKind::invalid, fmt::format("priority {} is not a number from 0 to 255", quote(word)));
    auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last || value > 255)
        return make_error(ErrorKind::invalid, fmt::format("priority {} is not a number from 0 to 255", quote(word)));
    return static_cast<std::uint8_t>(value);
}

std::string quote(std::string_view text) {
    constexpr std::size_t shown = 80;
    std::string out = "\"";
    std::size_t n = 0;
    for (char ch : text) {
        if (n++ == shown) {
            out += fmt::format("...\" ({} bytes)", text.size());
            return out;
        }
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c >= 0x20 && c < 0x7f) {
            out += ch;
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    out += '"';
    return out;
}

std::int64_t realtime_usec() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::int64_t boottime_usec() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

std::uint64_t boot_id() noexcept {
    // Read once per process: it cannot change while the process lives.
    static const std::uint64_t id = [] {
        std::uint64_t value = 0;
        int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return value;
        char text[64] = {};
        auto n = ::read(fd, text, sizeof text - 1);
        ::close(fd);
        // "xxxxxxxx-xxxx-xxxx-...": the first 16 hex digits, dashes skipped.
        int digits = 0;
        for (ssize_t i = 0; i < n && digits < 16; ++i) {
            char c = text[i];
            if (c == '-')
                continue;
            int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (v < 0)
                return std::uint64_t{0};
            value = value << 4 | static_cast<std::uint64_t>(v);
            ++digits;
        }
        return digits == 16 ? value : std::uint64_t{0};
    }();
    return id;
}

}  // namespace kanotify
