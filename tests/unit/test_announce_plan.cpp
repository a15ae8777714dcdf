// SPDX-License-Identifier: GPL-2.0-or-later
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include "announcer.hpp"

using namespace kanotify;
using std::chrono::microseconds;

namespace {

InterfaceFacts facts_with(std::initializer_list<const char*> addresses) {
    InterfaceFacts f;
    f.name = "eth0";
    f.ifindex = 2;
    f.admin_up = f.running = true;
    f.operstate = "up";
    for (const char* text : addresses) {
        InterfaceFacts::Address a;
        a.address = *parse_ip_address(text);
        f.addresses.push_back(a);
    }
    return f;
}

}  // namespace

TEST_CASE("plan: count rounds interval apart after the delay, paced by rate_pps", "[announce][plan]") {
    GarpSettings g;
    g.mode = "both";
    g.count = 2;
    g.interval_ms = 100;
    g.delay_ms = 50;
    g.rate_pps = 250;  // 4 ms apart
    auto plan = plan_announcement(facts_with({"10.0.0.1/24", "2001:db8::1/64"}), {}, g);
    REQUIRE(plan.error.empty());
    REQUIRE(plan.packets.size() == 6);  // 2 rounds of request, reply, NA
    std::vector<microseconds> at;
    std::vector<PacketKind> kinds;
    for (const auto& p : plan.packets) {
        at.push_back(p.at);
        kinds.push_back(p.kind);
    }
    CHECK(at == std::vector<microseconds>{microseconds(50000), microseconds(54000), microseconds(58000),
                                          microseconds(150000), microseconds(154000), microseconds(158000)});
    CHECK(kinds == std::vector<PacketKind>{PacketKind::arp_request, PacketKind::arp_reply,
                                           PacketKind::neighbour_advert, PacketKind::arp_request,
                                           PacketKind::arp_reply, PacketKind::neighbour_advert});
    CHECK(plan.outcomes[0].planned == 4);
    CHECK(plan.outcomes[1].planned == 2);
}

TEST_CASE("plan: a round longer than the interval pushes the next one, never bunching packets", "[announce][plan]") {
    GarpSettings g;
    g.count = 2;
    g.interval_ms = 1;
    g.rate_pps = 100;  // 10 ms apart: each round of 3 takes 20 ms
    auto plan = plan_announcement(facts_with({"10.0.0.1", "10.0.0.2", "10.0.0.3"}), {}, g);
    REQUIRE(plan.packets.size() == 6);
    for (std::size_t i = 1; i < plan.packets.size(); ++i)
        CHECK(plan.packets[i].at - plan.packets[i - 1].at == microseconds(10000));
}

TEST_CASE("plan: configured addresses not on the interface, tentative and dadfailed ones are skipped with a reason",
          "[announce][plan]") {
    auto f = facts_with({"10.0.0.1/24", "2001:db8::1/64", "2001:db8::2/64"});
    f.addresses[1].flags = 0x40;  // IFA_F_TENTATIVE
    f.addresses[2].flags = 0x08;  // IFA_F_DADFAILED
    GarpSettings g;
    g.count = 1;
    auto plan = plan_announcement(f, {"10.0.0.1/24", "10.0.0.9", "2001:db8::1", "2001:db8::2", "not-an-ip"}, g);
    REQUIRE(plan.outcomes.size() == 5);
    CHECK(plan.outcomes[0].planned == 1);
    CHECK(plan.outcomes[1].result == "skipped");
    CHECK(plan.outcomes[1].reason == "not configured on eth0");
    CHECK(plan.outcomes[2].reason.find("tentative") != std::string::npos);
    CHECK(plan.outcomes[3].reason.find("duplicate address detection failed") != std::string::npos);
    CHECK(plan.outcomes[4].result == "skipped");
    CHECK_FALSE(plan.outcomes[4].reason.empty());
    REQUIRE(plan.packets.size() == 1);
    CHECK(plan.packets[0].address == 0);
}

TEST_CASE("plan: without configured addresses, every global address of the interface", "[announce][plan]") {
    auto f = facts_with({"10.0.0.1/24", "fe80::1/64", "2001:db8::1/64"});
    f.addresses[1].scope = 253;  // RT_SCOPE_LINK
    GarpSettings g;
    g.count = 1;
    auto plan = plan_announcement(f, {}, g);
    REQUIRE(plan.outcomes.size() == 2);
    CHECK(plan.outcomes[0].address == "10.0.0.1");
    CHECK(plan.outcomes[1].address == "2001:db8::1");
    CHECK(plan.packets.size() == 2);
}

TEST_CASE("plan: an interface that is down or has no carrier sends nothing and says why", "[announce][plan]") {
    GarpSettings g;
    auto down = facts_with({"10.0.0.1"});
    down.admin_up = down.running = false;
    auto plan = plan_announcement(down, {"10.0.0.1"}, g);
    CHECK(plan.error == "eth0 is down");
    CHECK(plan.packets.empty());
    CHECK(plan.outcomes[0].result == "failed");
    auto no_carrier = facts_with({"10.0.0.1"});
    no_carrier.running = false;
    no_carrier.operstate = "lowerlayerdown";
    plan = plan_announcement(no_carrier, {}, g);
    CHECK(plan.error == "eth0 is not running (operstate lowerlayerdown, no carrier)");
    CHECK(plan.packets.empty());
}

TEST_CASE("plan: an interface with no global address reports it", "[announce][plan]") {
    auto plan = plan_announcement(facts_with({}), {}, GarpSettings{});
    CHECK(plan.error == "eth0 has no global address to announce");
    CHECK(plan.packets.empty());
}
