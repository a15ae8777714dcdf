// SPDX-License-Identifier: GPL-2.0-or-later
#include <catch2/catch.hpp>

#include "kanotify/parse.hpp"

using namespace kanotify;

namespace {

Result<Event> words(std::vector<std::string> w) {
    return parse_notify_words(w);
}

}  // namespace

TEST_CASE("generic notify words: every state keepalived passes", "[parse][argv]") {
    for (const auto& [word, state] : std::vector<std::pair<std::string, State>>{
             {"MASTER", State::master},
             {"BACKUP", State::backup},
             {"FAULT", State::fault},
             {"STOP", State::stop},
             {"DELETED", State::deleted},
             {"MASTER_RX_LOWER_PRI", State::master_rx_lower_pri},
             {"MASTER_PRIORITY", State::master_priority},
             {"BACKUP_PRIORITY", State::backup_priority}}) {
        auto event = words({"INSTANCE", "VI_1", word, "100"});
        REQUIRE(event);
        CHECK(event->kind == Kind::instance);
        CHECK(event->name == "VI_1");
        CHECK(event->state == state);
        CHECK(event->priority == std::optional<std::uint8_t>(100));
        CHECK(event->time_usec > 0);
    }
    auto group = words({"GROUP", "G1", "BACKUP", "0"});
    REQUIRE(group);
    CHECK(group->kind == Kind::group);
    CHECK(group->priority == std::optional<std::uint8_t>(0));
    CHECK(words({"INSTANCE", "a.b:c-d_9", "MASTER", "255"}));
    CHECK(words({"INSTANCE", std::string(64, 'x'), "MASTER", "1"}));
}

TEST_CASE("generic notify words: malformed input is rejected with the reason", "[parse][argv]") {
    struct Case {
        std::vector<std::string> words;
        ErrorKind kind;
        std::string says;
    };
    std::vector<Case> cases{
        {{}, ErrorKind::usage, "4 words"},
        {{"INSTANCE", "VI_1", "MASTER"}, ErrorKind::usage, "got 3"},
        {{"INSTANCE", "VI_1", "MASTER", "100", "x"}, ErrorKind::usage, "got 5"},
        {{"instance", "VI_1", "MASTER", "100"}, ErrorKind::invalid, "unknown type"},
        {{"INSTANCE", "VI_1", "master", "100"}, ErrorKind::invalid, "unknown state"},
        {{"INSTANCE", "VI_1", "PRIMARY", "100"}, ErrorKind::invalid, "unknown state"},
        {{"INSTANCE", "VI_1", "MASTER", "256"}, ErrorKind::invalid, "priority \"256\""},
        {{"INSTANCE", "VI_1", "MASTER", "-1"}, ErrorKind::invalid, "priority \"-1\""},
        {{"INSTANCE", "VI_1", "MASTER", "+1"}, ErrorKind::invalid, "priority"},
        {{"INSTANCE", "VI_1", "MASTER", "1x"}, ErrorKind::invalid, "priority"},
        {{"INSTANCE", "VI_1", "MASTER", " 1"}, ErrorKind::invalid, "priority"},
        {{"INSTANCE", "VI_1", "MASTER", "0100"}, ErrorKind::invalid, "priority"},
        {{"INSTANCE", "VI_1", "MASTER", ""}, ErrorKind::invalid, "priority"},
        {{"INSTANCE", "", "MASTER", "100"}, ErrorKind::invalid, "empty"},
        {{"INSTANCE", "a/b", "MASTER", "100"}, ErrorKind::invalid, "contains \"/\""},
        {{"INSTANCE", "..", "MASTER", "100"}, ErrorKind::invalid, "\"..\""},
        {{"INSTANCE", "../etc", "MASTER", "100"}, ErrorKind::invalid, "contains"},
        {{"INSTANCE", "VI 1", "MASTER", "100"}, ErrorKind::invalid, "contains \" \""},
        {{"INSTANCE", "VI\n1", "MASTER", "100"}, ErrorKind::invalid, "\\x0a"},
        {{"INSTANCE", std::string("VI\0" "1", 4), "MASTER", "100"}, ErrorKind::invalid, "\\x00"},
        {{"INSTANCE", "VI\x1b[31m", "MASTER", "100"}, ErrorKind::invalid, "\\x1b"},
        {{"INSTANCE", "caf\xc3\xa9", "MASTER", "100"}, ErrorKind::invalid, "\\xc3"},
        {{"INSTANCE", "\xff\xfe", "MASTER", "100"}, ErrorKind::invalid, "\\xff"},
        {{"INSTANCE", "$(reboot)", "MASTER", "100"}, ErrorKind::invalid, "contains"},
        {{"INSTANCE", std::string(65, 'x'), "MASTER", "100"}, ErrorKind::invalid, "65 bytes"},
        {{"INSTANCE", std::string(4096, 'x'), "MASTER", "100"}, ErrorKind::invalid, "4096 bytes"},
    };
    for (const auto& c : cases) {
        INFO("words: " << c.words.size() << (c.words.size() > 1 ? " name " + quote(c.words[1]) : std::string()));
        auto event = words(c.words);
        REQUIRE_FALSE(event);
        CHECK(event.error().kind == c.kind);
        CHECK_THAT(event.error().message, Catch::Contains(c.says));
    }
}

TEST_CASE("explicit form: --state with --instance or --group", "[parse][argv]") {
    ExplicitNotify flags;
    flags.instance = "VI_1";
    flags.state = "master";
    auto event = parse_explicit_notify(flags);
    REQUIRE(event);
    CHECK(event->state == State::master);
    CHECK_FALSE(event->priority);

    flags.state = "master_rx_lower_pri";
    REQUIRE(parse_explicit_notify(flags));
    CHECK(parse_explicit_notify(flags)->state == State::master_rx_lower_pri);
    flags.state = "BACKUP";
    flags.priority = "50";
    event = parse_explicit_notify(flags);
    REQUIRE(event);
    CHECK(event->state == State::backup);
    CHECK(event->priority == std::optional<std::uint8_t>(50));

    ExplicitNotify group;
    group.group = "G1";
    group.state = "fault";
    event = parse_explicit_notify(group);
    REQUIRE(event);
    CHECK(event->kind == Kind::group);
    CHECK(event->state == State::fault);
}

TEST_CASE("explicit form: missing or conflicting flags", "[parse][argv]") {
    ExplicitNotify none;
    none.state = "master";
    CHECK(parse_explicit_notify(none).error().kind == ErrorKind::usage);
    ExplicitNotify both;
    both.instance = "a";
    both.group = "b";
    both.state = "master";
    CHECK(parse_explicit_notify(both).error().kind == ErrorKind::usage);
    ExplicitNotify stateless;
    stateless.instance = "a";
    CHECK(parse_explicit_notify(stateless).error().kind == ErrorKind::usage);
    ExplicitNotify bad_state;
    bad_state.instance = "a";
    bad_state.state = "Master";
    CHECK(parse_explicit_notify(bad_state).error().kind == ErrorKind::invalid);
    ExplicitNotify bad_priority;
    bad_priority.instance = "a";
    bad_priority.state = "master";
    bad_priority.priority = "-1";
    CHECK(parse_explicit_notify(bad_priority).error().kind == ErrorKind::invalid);
    ExplicitNotify bad_name;
    bad_name.instance = "../../etc/passwd";
    bad_name.state = "master";
    CHECK(parse_explicit_notify(bad_name).error().kind == ErrorKind::invalid);
}

TEST_CASE("FIFO lines: the forms keepalived writes", "[parse][fifo]") {
    auto line = parse_fifo_line("INSTANCE \"VI_1\" MASTER 100");
    REQUIRE(line);
    CHECK(line->kind == FifoLineKind::vrrp);
    CHECK(line->event.name == "VI_1");
    CHECK(line->event.state == State::master);
    CHECK(line->event.source == Source::fifo);
    line = parse_fifo_line("GROUP \"G1\" BACKUP 0");
    REQUIRE(line);
    CHECK(line->event.kind == Kind::group);
    for (auto s : {"MASTER_RX_LOWER_PRI", "MASTER_PRIORITY", "BACKUP_PRIORITY", "FAULT", "STOP", "DELETED"})
        CHECK(parse_fifo_line(std::string("INSTANCE \"VI_1\" ") + s + " 90"));
    line = parse_fifo_line("VS [10.0.0.1]:tcp:80 UP");
    REQUIRE(line);
    CHECK(line->kind == FifoLineKind::checker);
    line = parse_fifo_line("RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN");
    REQUIRE(line);
    CHECK(line->kind == FifoLineKind::checker);
}

TEST_CASE("FIFO lines: malformed ones are rejected", "[parse][fifo]") {
    std::vector<std::string> bad{
        "",
        std::string(4096, 'A'),
        "INSTANCE VI_1 MASTER 100",
        "INSTANCE \"VI_1 MASTER 100",
        "INSTANCE VI_1\" MASTER 100",
        "INSTANCE \"\" MASTER 100",
        "INSTANCE \"VI 1\" MASTER 100",
        "INSTANCE 'VI_1' MASTER 100",
        "INSTANCE \"VI_1\" LEADER 100",
        "INSTANCE \"VI_1\" MASTER 256",
        "INSTANCE \"VI_1\" MASTER -1",
        "INSTANCE \"VI_1\" MASTER",
        "INSTANCE \"VI_1\" MASTER 100 extra",
        "INSTANCE  \"VI_1\" MASTER 100",
        " INSTANCE \"VI_1\" MASTER 100",
        "INSTANCE \"VI_1\" MASTER 100 ",
        "INSTANCE\t\"VI_1\" MASTER 100",
        "INSTANCE \"VI_1\" MASTER 100\r",
        "INSTANCE \"a/b\" MASTER 100",
        "INSTANCE \"..\" MASTER 100",
        "INSTANCE \"\x01\x02\" MASTER 100",
        "INSTANCE \"\xc3\x28\" MASTER 100",
        "HOST \"VI_1\" MASTER 100",
        "VS",
    };
    for (const auto& text : bad) {
        INFO("line " << quote(text));
        auto line = parse_fifo_line(text);
        REQUIRE_FALSE(line);
        CHECK(line.error().kind == ErrorKind::invalid);
        CHECK_FALSE(line.error().message.empty());
    }
}

TEST_CASE("quote() keeps messages on one printable line", "[parse]") {
    CHECK(quote("VI_1") == "\"VI_1\"");
    CHECK(quote("a\nb") == "\"a\\x0ab\"");
    CHECK(quote("\"") == "\"\\\"\"");
    auto long_text = quote(std::string(10240, 'x'));
    CHECK(long_text.size() < 120);
    CHECK_THAT(long_text, Catch::Contains("10240 bytes"));
}
