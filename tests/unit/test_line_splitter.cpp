// SPDX-License-Identifier: GPL-2.0-or-later
#include <catch2/catch.hpp>

#include "line_queue.hpp"
#include "line_splitter.hpp"

using namespace kanotify;

namespace {

struct Collected {
    std::vector<std::string> lines;
    std::size_t overlong = 0;
};

void feed(LineSplitter& splitter, std::string_view bytes, Collected& out) {
    splitter.feed(bytes, [&](std::string_view line, bool overlong) {
        if (overlong)
            ++out.overlong;
        else
            out.lines.emplace_back(line);
    });
}

}  // namespace

TEST_CASE("line splitter: lines split across reads are joined", "[fifo]") {
    LineSplitter splitter(100);
    Collected out;
    feed(splitter, "INSTANCE \"VI_1\" MAS", out);
    CHECK(out.lines.empty());
    feed(splitter, "TER 100\nGROUP \"G\" BACKUP 0\nINST", out);
    REQUIRE(out.lines.size() == 2);
    CHECK(out.lines[0] == "INSTANCE \"VI_1\" MASTER 100");
    CHECK(out.lines[1] == "GROUP \"G\" BACKUP 0");
    CHECK(splitter.pending() == "INST");
    feed(splitter, "\n\n", out);
    REQUIRE(out.lines.size() == 4);
    CHECK(out.lines[2] == "INST");
    CHECK(out.lines[3].empty());
}

TEST_CASE("line splitter: an overlong line is reported once and skipped to its end", "[fifo]") {
    LineSplitter splitter(16);
    Collected out;
    feed(splitter, std::string(10, 'a'), out);
    feed(splitter, std::string(10, 'b'), out);
    feed(splitter, std::string(5000, 'c'), out);
    CHECK(out.overlong == 1);
    CHECK(splitter.discarding());
    feed(splitter, "cc\nok\n", out);
    CHECK(out.overlong == 1);
    REQUIRE(out.lines.size() == 1);
    CHECK(out.lines[0] == "ok");
    feed(splitter, std::string(16, 'x') + "\n", out);
    REQUIRE(out.lines.size() == 2);
    CHECK(out.lines[1] == std::string(16, 'x'));
}

TEST_CASE("line queue: batches are capped and keep the order", "[fifo]") {
    LineQueue queue;
    std::vector<ReceivedLine> lines;
    for (std::uint64_t i = 0; i < 10; ++i)
        lines.push_back(ReceivedLine{std::to_string(i), i, 0, false});
    queue.push(std::move(lines));
    auto first = queue.take(4);
    REQUIRE(first.size() == 4);
    CHECK(first.front().text == "0");
    queue.push({ReceivedLine{"10", 10, 0, false}});
    auto second = queue.take(4);
    REQUIRE(second.size() == 4);
    CHECK(second.front().text == "4");
    auto rest = queue.take(100);
    REQUIRE(rest.size() == 3);
    CHECK(rest.back().text == "10");
    queue.close();
    CHECK(queue.take(4).empty());
}
