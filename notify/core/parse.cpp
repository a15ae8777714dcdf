// SPDX-License-Identifier: GPL-2.0-or-later
// keepalived's two ways of telling us about a transition, parsed strictly:
// anything that is not exactly what keepalived writes is rejected with the
// reason, because a half-understood event would be recorded as a fact.
#include "kanotify/parse.hpp"

#include <fmt/format.h>

namespace kanotify {

namespace {

Result<Event> build_event(Kind kind, std::string_view name, State state, std::optional<std::uint8_t> priority) {
    if (auto ok = validate_name(name); !ok)
        return tl::unexpected(ok.error());
    Event event;
    event.kind = kind;
    event.name = std::string(name);
    event.state = state;
    event.priority = priority;
    event.time_usec = realtime_usec();
    event.boottime_usec = boottime_usec();
    return event;
}

Result<State> state_word(std::string_view word) {
    if (auto state = parse_state(word))
        return *state;
    return make_error(ErrorKind::invalid,
                      fmt::format("unknown state {}: expected MASTER, BACKUP, FAULT, STOP, DELETED, "
                                  "MASTER_RX_LOWER_PRI, MASTER_PRIORITY or BACKUP_PRIORITY",
                                  quote(word)));
}

Result<Kind> kind_word(std::string_view word) {
    if (auto kind = parse_kind(word))
        return *kind;
    return make_error(ErrorKind::invalid, fmt::format("unknown type {}: expected INSTANCE or GROUP", quote(word)));
}

// Splits at single spaces; a double space, a tab or a leading space is a
// malformed line, not something to guess at.
std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t start = 0;
    while (true) {
        auto space = line.find(' ', start);
        words.push_back(line.substr(start, space == std::string_view::npos ? std::string_view::npos : space - start));
        if (space == std::string_view::npos)
            break;
        start = space + 1;
    }
    return words;
}

}  // namespace

Result<Event> parse_notify_words(std::span<const std::string> words) {
    if (words.size() != 4)
        return make_error(ErrorKind::usage,
                          fmt::format("expected TYPE NAME STATE PRIORITY (4 words) after the options, got {}",
                                      words.size()));
    auto kind = kind_word(words[0]);
    if (!kind)
        return tl::unexpected(kind.error());
    auto state = state_word(words[2]);
    if (!state)
        return tl::unexpected(state.error());
    auto priority = parse_priority(words[3]);
    if (!priority)
        return tl::unexpected(priority.error());
    return build_event(*kind, words[1], *state, *priority);
}

Result<Event> parse_explicit_notify(const ExplicitNotify& flags) {
    if (flags.instance && flags.group)
        return make_error(ErrorKind::usage, "--instance and --group are mutually exclusive");
    if (!flags.instance && !flags.group)
        return make_error(ErrorKind::usage, "--state needs --instance NAME or --group NAME");
    if (!flags.state)
        return make_error(ErrorKind::usage, "--instance/--group needs --state STATE");
    auto state = parse_state_flag(*flags.state);
    if (!state)
        return make_error(ErrorKind::invalid,
                          fmt::format("unknown state {}: expected master, backup, fault, stop, deleted, "
                                      "master_rx_lower_pri, master_priority or backup_priority",
                                      quote(*flags.state)));
    std::optional<std::uint8_t> priority;
    if (flags.priority) {
        auto parsed = parse_priority(*flags.priority);
        if (!parsed)
            return tl::unexpected(parsed.error());
        priority = *parsed;
    }
    if (flags.instance)
        return build_event(Kind::instance, *flags.instance, *state, priority);
    return build_event(Kind::group, *flags.group, *state, priority);
}

Result<FifoLine> parse_fifo_line(std::string_view line) {
    if (line.empty())
        return make_error(ErrorKind::invalid, "empty line");
    if (line.size() > max_fifo_line)
        return make_error(ErrorKind::invalid,
                          fmt::format("line of {} bytes, longer than any keepalived writes ({})", line.size(),
                                      max_fifo_line));
    FifoLine out;
    // The global notify_fifo also carries the checker's virtual and real
    // server lines; they are keepalived's, just not VRRP transitions.
    if (line.starts_with("VS ") || line.starts_with("RS ")) {
        out.kind = FifoLineKind::checker;
        out.checker = std::string(line);
        return out;
    }
    auto words = split_words(line);
    if (words.size() != 4)
        return make_error(ErrorKind::invalid,
                          fmt::format("expected TYPE \"NAME\" STATE PRIORITY separated by single spaces, got {}",
                                      quote(line)));
    auto kind = kind_word(words[0]);
    if (!kind)
        return tl::unexpected(kind.error());
    auto quoted = words[1];
    if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"')
        return make_error(ErrorKind::invalid, fmt::format("name {} is not in double quotes", quote(quoted)));
    auto state = state_word(words[2]);
    if (!state)
        return tl::unexpected(state.error());
    auto priority = parse_priority(words[3]);
    if (!priority)
        return tl::unexpected(priority.error());
    auto event = build_event(*kind, quoted.substr(1, quoted.size() - 2), *state, *priority);
    if (!event)
        return tl::unexpected(event.error());
    out.event = std::move(*event);
    out.event.source = Source::fifo;
    return out;
}

}  // namespace kanotify
