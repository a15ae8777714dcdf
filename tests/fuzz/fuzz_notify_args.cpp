// SPDX-License-Identifier: GPL-2.0-or-later
// Fuzzes the two notify command-line forms: keepalived's generic
// `TYPE NAME STATE PRIORITY` words and the explicit --instance/--group,
// --state, --priority flags. The input is split on NUL bytes into words,
// the way they arrive in argv.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kanotify/event.hpp"
#include "kanotify/parse.hpp"
#include "argv_words.hpp"

using namespace kanotify;

namespace {

constexpr std::size_t max_input = 4096;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

bool same_event(const Event& a, const Event& b) {
    return a.kind == b.kind && a.name == b.name && a.state == b.state && a.priority == b.priority &&
           a.source == b.source;
}

// What every accepted event satisfies, whichever way it came in.
void check_event(const Event& event) {
    check(validate_name(event.name).has_value());
    check(event.name.size() <= max_name_length);
    check(parse_kind(to_string(event.kind)) == event.kind);
    check(parse_state(to_string(event.state)) == event.state);
    check(event.source == Source::argv);
    check(event.time_usec > 0);
    if (event.priority) {
        // Priorities are 0-255 and print back to themselves.
        auto again = parse_priority(std::to_string(unsigned{*event.priority}));
        check(again.has_value() && *again == *event.priority);
    }
}

void generic(const std::vector<std::string>& words) {
    auto event = parse_notify_words(words);
    if (!event) {
        check(!event.error().message.empty());
        return;
    }
    check(words.size() == 4);
    check_event(*event);
    check(event->priority.has_value());
    check(words[0] == to_string(event->kind));
    check(words[1] == event->name);
    check(words[2] == to_string(event->state));
    // Round trip: the event written back as words parses to itself.
    std::vector<std::string> again_words{std::string(to_string(event->kind)), event->name,
                                         std::string(to_string(event->state)),
                                         std::to_string(unsigned{*event->priority})};
    auto again = parse_notify_words(again_words);
    check(again.has_value() && same_event(*again, *event));
    // The explicit form says the same thing.
    ExplicitNotify flags;
    (event->kind == Kind::group ? flags.group : flags.instance) = event->name;
    flags.state = words[2];
    flags.priority = words[3];
    auto expl = parse_explicit_notify(flags);
    check(expl.has_value() && same_event(*expl, *event));
}

// The first word's first byte says which flags are present; the following
// words fill them in order.
void explicit_flags(const std::vector<std::string>& words) {
    if (words.empty() || words[0].empty())
        return;
    auto mask = static_cast<unsigned char>(words[0][0]);
    ExplicitNotify flags;
    std::size_t next = 1;
    auto take = [&](unsigned bit, std::optional<std::string>& slot) {
        if ((mask & bit) == 0)
            return;
        slot = next < words.size() ? words[next] : std::string();
        ++next;
    };
    take(1, flags.instance);
    take(2, flags.group);
    take(4, flags.state);
    take(8, flags.priority);
    auto event = parse_explicit_notify(flags);
    if (!event) {
        check(!event.error().message.empty());
        return;
    }
    check_event(*event);
    check(flags.instance.has_value() != flags.group.has_value());
    check(event->kind == (flags.group ? Kind::group : Kind::instance));
    check(event->name == (flags.group ? *flags.group : *flags.instance));
    check(flags.state && parse_state_flag(*flags.state) == event->state);
    check(event->priority.has_value() == flags.priority.has_value());
    if (flags.priority) {
        auto priority = parse_priority(*flags.priority);
        check(priority.has_value() && *priority == *event->priority);
        // With a priority it is exactly a generic notify.
        std::vector<std::string> as_words{std::string(to_string(event->kind)), event->name,
                                          std::string(to_string(event->state)), *flags.priority};
        auto generic_event = parse_notify_words(as_words);
        check(generic_event.has_value() && same_event(*generic_event, *event));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    auto words = kanotify::fuzz::split_on_nul(std::string_view(reinterpret_cast<const char*>(data), size));
    generic(words);
    explicit_flags(words);
    return 0;
}
