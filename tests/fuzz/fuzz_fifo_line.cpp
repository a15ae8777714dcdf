// SPDX-License-Identifier: GPL-2.0-or-later
// Fuzzes keepalived's notify FIFO: the input once as a single line, then as
// a byte stream cut into lines by LineSplitter (whole, and again in chunks
// whose sizes the input's first byte picks), each line parsed as the FIFO
// reader does.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kanotify/event.hpp"
#include "kanotify/parse.hpp"
#include "line_splitter.hpp"

using namespace kanotify;

namespace {

constexpr std::size_t max_input = 16 * 1024;
constexpr std::size_t overlong_shown = 64;  // what LineSplitter reports of an overlong line

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

void check_line(std::string_view line) {
    auto parsed = parse_fifo_line(line);
    if (!parsed) {
        check(!parsed.error().message.empty());
        return;
    }
    check(!line.empty() && line.size() <= max_fifo_line);
    if (parsed->kind == FifoLineKind::checker) {
        check(line.starts_with("VS ") || line.starts_with("RS "));
        check(parsed->checker == line);
        return;
    }
    const auto& event = parsed->event;
    check(parsed->checker.empty());
    check(event.source == Source::fifo);
    check(validate_name(event.name).has_value());
    check(event.priority.has_value());
    // Nothing but the four words: no NUL, newline, tab or second space.
    check(line.find_first_of(std::string_view("\0\n\r\t", 4)) == std::string_view::npos);
    check(line.find("  ") == std::string_view::npos);
    // Round trip: TYPE "NAME" STATE PRIO written back parses to the same event.
    auto priority = std::to_string(unsigned{*event.priority});
    check(priority.size() <= 3 && parse_priority(priority).has_value());
    std::string again_line = std::string(to_string(event.kind)) + " \"" + event.name + "\" " +
                             std::string(to_string(event.state)) + " " + priority;
    auto again = parse_fifo_line(again_line);
    check(again.has_value() && again->kind == FifoLineKind::vrrp);
    check(again->event.kind == event.kind && again->event.name == event.name &&
          again->event.state == event.state && again->event.priority == event.priority &&
          again->event.source == Source::fifo);
}

struct Seen {
    std::vector<std::string> lines;  // complete lines within the limit
    std::size_t overlong = 0;
    std::string pending;
    bool discarding = false;
};

Seen split(std::string_view input, std::size_t chunk) {
    LineSplitter splitter(max_fifo_line);
    Seen seen;
    auto sink = [&](std::string_view line, bool overlong) {
        check(line.find('\n') == std::string_view::npos);
        if (overlong) {
            check(line.size() <= overlong_shown);
            ++seen.overlong;
        } else {
            check(line.size() <= max_fifo_line);
            seen.lines.emplace_back(line);
        }
    };
    while (!input.empty()) {
        auto piece = input.substr(0, chunk);
        splitter.feed(piece, sink);
        input.remove_prefix(piece.size());
    }
    seen.pending = std::string(splitter.pending());
    seen.discarding = splitter.discarding();
    check(seen.pending.size() <= max_fifo_line);
    check(!(seen.discarding && !seen.pending.empty()));
    return seen;
}

// What LineSplitter must report, computed the obvious way.
Seen reference(std::string_view input) {
    Seen seen;
    while (true) {
        auto nl = input.find('\n');
        auto line = input.substr(0, nl);
        if (nl == std::string_view::npos) {
            if (line.size() > max_fifo_line) {
                ++seen.overlong;
                seen.discarding = true;
            } else {
                seen.pending = std::string(line);
            }
            return seen;
        }
        if (line.size() > max_fifo_line)
            ++seen.overlong;
        else
            seen.lines.emplace_back(line);
        input.remove_prefix(nl + 1);
    }
}

bool same(const Seen& a, const Seen& b) {
    return a.lines == b.lines && a.overlong == b.overlong && a.pending == b.pending &&
           a.discarding == b.discarding;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    check_line(input);

    auto expected = reference(input);
    auto whole = split(input, input.size() + 1);
    check(same(whole, expected));
    // Reads of any size cut the stream into the same lines.
    std::size_t chunk = input.empty() ? 1 : static_cast<unsigned char>(input[0]) % 37u + 1;
    auto pieces = split(input, chunk);
    check(same(pieces, expected));

    for (const auto& line : whole.lines)
        check_line(line);
    return 0;
}
