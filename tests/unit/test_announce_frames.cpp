// SPDX-License-Identifier: GPL-2.0-or-later
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "announce_frames.hpp"
#include "pcap.hpp"

using namespace kanotify;

namespace {

std::vector<std::uint8_t> hex(std::string text) {
    std::vector<std::uint8_t> out;
    std::string digits;
    for (char c : text)
        if (c != ' ' && c != '\n')
            digits += c;
    for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
    return out;
}

template <std::size_t N>
std::vector<std::uint8_t> vec(const std::array<std::uint8_t, N>& a) {
    return {a.begin(), a.end()};
}

std::vector<std::uint8_t> field(const std::vector<std::uint8_t>& frame, std::size_t at, std::size_t n) {
    REQUIRE(frame.size() >= at + n);
    return {frame.begin() + static_cast<std::ptrdiff_t>(at), frame.begin() + static_cast<std::ptrdiff_t>(at + n)};
}

// The MAC and addresses capture_keepalived.sh gives keepalived.
constexpr Mac fixture_mac{0x02, 0x00, 0x5e, 0x00, 0x00, 0x0a};
constexpr Ipv4Bytes fixture_v4{198, 51, 100, 100};
constexpr Ipv6Bytes fixture_v6{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00};

std::vector<test::CapturedFrame> keepalived_frames() {
    return test::read_pcap(std::string(KANOTIFY_FIXTURES_DIR) + "/announce/keepalived.pcap");
}

const test::CapturedFrame& first_with_ethertype(const std::vector<test::CapturedFrame>& frames, std::uint16_t type) {
    for (const auto& f : frames)
        if (f.bytes.size() >= 14 && (f.bytes[12] << 8 | f.bytes[13]) == type)
            return f;
    FAIL("the keepalived capture has no frame of ethertype " << type);
    throw;
}

}  // namespace

TEST_CASE("gratuitous ARP request: golden bytes", "[announce][frames]") {
    auto frame = build_gratuitous_arp(ArpOp::request, fixture_mac, fixture_v4);
    CHECK(vec(frame) == hex("ffffffffffff 02005e00000a 0806"
                            "0001 0800 06 04 0001"
                            "02005e00000a c6336464"
                            "ffffffffffff c6336464"));
}

TEST_CASE("gratuitous ARP reply: golden bytes, our MAC as target hardware address", "[announce][frames]") {
    auto frame = build_gratuitous_arp(ArpOp::reply, Mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, Ipv4Bytes{10, 0, 0, 1});
    CHECK(vec(frame) == hex("ffffffffffff 525400123456 0806"
                            "0001 0800 06 04 0002"
                            "525400123456 0a000001"
                            "525400123456 0a000001"));
}

TEST_CASE("unsolicited NA: golden bytes with and without the Router flag", "[announce][frames]") {
    // 0x9835 is the checksum keepalived put in the same NA (the fixture);
    // tcpdump reports "[icmp6 sum ok]" for it.
    auto plain = build_unsolicited_na(fixture_mac, fixture_v6, false);
    CHECK(vec(plain) == hex("333300000001 02005e00000a 86dd"
                            "60000000 0020 3a ff"
                            "20010db8007700000000000000000100"
                            "ff020000000000000000000000000001"
                            "88 00 9835 20000000"
                            "20010db8007700000000000000000100"
                            "02 01 02005e00000a"));
    auto router = build_unsolicited_na(fixture_mac, fixture_v6, true);
    auto expected = vec(plain);
    expected[54 + 4] = 0xa0;  // R and O
    // The flags word grew by 0x8000, so the complemented sum shrinks by it:
    // 0x9835 - 0x8000.
    expected[54 + 2] = 0x18;
    CHECK(vec(router) == expected);
}

TEST_CASE("ICMPv6 checksum of a message that carries its own checksum is zero", "[announce][frames]") {
    auto frame = build_unsolicited_na(Mac{0x02, 0x11, 0x22, 0x33, 0x44, 0x55},
                                      Ipv6Bytes{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0xff, 0xfe, 0x44, 0x55,
                                                0x66},
                                      true);
    Ipv6Bytes src{}, dst{};
    std::copy(frame.begin() + 22, frame.begin() + 38, src.begin());
    std::copy(frame.begin() + 38, frame.begin() + 54, dst.begin());
    auto icmp = std::span<const std::uint8_t>(frame).subspan(54);
    // Verifying a correct checksum sums to 0xffff, whose complement is 0.
    CHECK(icmpv6_checksum(src, dst, icmp) == 0);
}

TEST_CASE("kanotify's ARP request matches keepalived's, field by field", "[announce][frames][keepalived]") {
    auto frames = keepalived_frames();
    const auto& theirs = first_with_ethertype(frames, 0x0806).bytes;
    auto ours = vec(build_gratuitous_arp(ArpOp::request, fixture_mac, fixture_v4));
    REQUIRE(theirs.size() == ours.size());
    struct Field {
        const char* name;
        std::size_t at, size;
    };
    for (auto f : {Field{"destination MAC", 0, 6}, Field{"source MAC", 6, 6}, Field{"ethertype", 12, 2},
                   Field{"hardware type", 14, 2}, Field{"protocol type", 16, 2}, Field{"hardware length", 18, 1},
                   Field{"protocol length", 19, 1}, Field{"opcode", 20, 2}, Field{"sender MAC", 22, 6},
                   Field{"sender IP", 28, 4}, Field{"target MAC", 32, 6}, Field{"target IP", 38, 4}}) {
        INFO(f.name);
        CHECK(field(ours, f.at, f.size) == field(theirs, f.at, f.size));
    }
}

TEST_CASE("kanotify's unsolicited NA matches keepalived's, field by field", "[announce][frames][keepalived]") {
    auto frames = keepalived_frames();
    const auto& theirs = first_with_ethertype(frames, 0x86dd).bytes;
    // keepalived's interface in the fixture does not forward: no Router flag.
    auto ours = vec(build_unsolicited_na(fixture_mac, fixture_v6, false));
    REQUIRE(theirs.size() == ours.size());
    struct Field {
        const char* name;
        std::size_t at, size;
    };
    for (auto f : {Field{"destination MAC", 0, 6}, Field{"source MAC", 6, 6}, Field{"ethertype", 12, 2},
                   Field{"version, class, flow", 14, 4}, Field{"payload length", 18, 2},
                   Field{"next header", 20, 1}, Field{"hop limit", 21, 1}, Field{"IPv6 source", 22, 16},
                   Field{"IPv6 destination", 38, 16}, Field{"ICMPv6 type", 54, 1}, Field{"ICMPv6 code", 55, 1},
                   Field{"ICMPv6 checksum", 56, 2}, Field{"NA flags", 58, 4}, Field{"NA target", 62, 16},
                   Field{"option type", 78, 1}, Field{"option length", 79, 1},
                   Field{"target link-layer address", 80, 6}}) {
        INFO(f.name);
        CHECK(field(ours, f.at, f.size) == field(theirs, f.at, f.size));
    }
}
