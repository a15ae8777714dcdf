// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "kanotify/dispatch.hpp"
#include "reconcile.hpp"
#include "seams.hpp"
#include "temp_dir.hpp"

using namespace kanotify;
using kanotify::test::read_file;
using kanotify::test::TempDir;

namespace {

// Builds netlink messages the way the kernel lays them out, so the decoder
// is tested on bytes rather than on our own structures.
class MessageBuilder {
  public:
    void add_address(int family, int ifindex, const char* text, int prefix, std::uint32_t flags, bool local) {
        std::uint8_t raw[16] = {};
        REQUIRE(::inet_pton(family, text, raw) == 1);
        std::size_t size = family == AF_INET ? 4 : 16;
        auto start = begin(RTM_NEWADDR);
        ifaddrmsg body{};
        body.ifa_family = static_cast<std::uint8_t>(family);
        body.ifa_prefixlen = static_cast<std::uint8_t>(prefix);
        body.ifa_index = static_cast<std::uint32_t>(ifindex);
        append(&body, sizeof body);
        if (local)
            attribute(IFA_LOCAL, raw, size);
        attribute(IFA_ADDRESS, local ? peer_ : raw, size);
        attribute(IFA_FLAGS, &flags, sizeof flags);
        finish(start);
    }
    void add_link(int ifindex, const char* name) {
        auto start = begin(RTM_NEWLINK);
        ifinfomsg body{};
        body.ifi_index = ifindex;
        append(&body, sizeof body);
        attribute(IFLA_IFNAME, name, std::strlen(name) + 1);
        finish(start);
    }
    void add_done(std::uint16_t flags = 0) {
        auto start = begin(NLMSG_DONE, flags);
        int zero = 0;
        append(&zero, sizeof zero);
        finish(start);
    }
    std::vector<std::uint8_t> bytes;

  private:
    std::size_t begin(std::uint16_t type, std::uint16_t flags = NLM_F_MULTI) {
        auto start = bytes.size();
        nlmsghdr header{};
        header.nlmsg_type = type;
        header.nlmsg_flags = flags;
        append(&header, sizeof header);
        return start;
    }
    void finish(std::size_t start) {
        auto length = static_cast<std::uint32_t>(bytes.size() - start);
        std::memcpy(bytes.data() + start, &length, sizeof length);
        pad();
    }
    void attribute(std::uint16_t type, const void* data, std::size_t size) {
        rtattr attr{};
        attr.rta_type = type;
        attr.rta_len = static_cast<std::uint16_t>(sizeof attr + size);
        append(&attr, sizeof attr);
        append(data, size);
        pad();
    }
    void append(const void* data, std::size_t size) {
        auto p = static_cast<const std::uint8_t*>(data);
        bytes.insert(bytes.end(), p, p + size);
    }
    void pad() {
        while (bytes.size() % 4)
            bytes.push_back(0);
    }
    std::uint8_t peer_[16] = {192, 0, 2, 254};
};

}  // namespace

TEST_CASE("rtnetlink decoder: addresses, IFA_LOCAL over IFA_ADDRESS, flags, end of dump", "[netlink]") {
    MessageBuilder m;
    m.add_address(AF_INET, 2, "192.0.2.100", 24, 0, false);
    m.add_address(AF_INET, 3, "198.51.100.1", 32, 0, true);  // point-to-point: IFA_ADDRESS is the peer
    m.add_address(AF_INET6, 2, "2001:db8::1", 64, IFA_F_TENTATIVE | IFA_F_NODAD, false);
    m.add_done();
    std::vector<KernelAddress> out;
    auto progress = decode_address_dump(m.bytes, out);
    REQUIRE(progress);
    CHECK(progress->done);
    CHECK_FALSE(progress->interrupted);
    REQUIRE(out.size() == 3);
    CHECK(out[0].address.str() == "192.0.2.100/24");
    CHECK(out[0].ifindex == 2);
    CHECK(out[1].address.str() == "198.51.100.1/32");
    CHECK(out[2].address.str() == "2001:db8::1/64");
    CHECK(out[2].flags == (IFA_F_TENTATIVE | IFA_F_NODAD));
}

TEST_CASE("rtnetlink decoder: truncated and lying lengths are errors, not reads past the end", "[netlink]") {
    MessageBuilder m;
    m.add_address(AF_INET, 2, "192.0.2.100", 24, 0, false);
    for (std::size_t cut = 1; cut < m.bytes.size(); ++cut) {
        std::vector<KernelAddress> out;
        auto progress = decode_address_dump(std::span<const std::uint8_t>(m.bytes.data(), cut), out);
        CHECK((!progress || !progress->done));
    }
    auto lying = m.bytes;
    std::uint32_t too_long = 4096;
    std::memcpy(lying.data(), &too_long, sizeof too_long);
    std::vector<KernelAddress> out;
    CHECK_FALSE(decode_address_dump(lying, out));
    auto bad_attr = m.bytes;
    // The first attribute's length, just after nlmsghdr and ifaddrmsg.
    std::uint16_t huge = 0xffff;
    std::memcpy(bad_attr.data() + sizeof(nlmsghdr) + sizeof(ifaddrmsg), &huge, sizeof huge);
    CHECK_FALSE(decode_address_dump(bad_attr, out));
}

TEST_CASE("rtnetlink decoder: an interrupted dump is reported", "[netlink]") {
    MessageBuilder m;
    m.add_link(1, "lo");
    m.add_link(7, "eth0");
    m.add_done(NLM_F_MULTI | NLM_F_DUMP_INTR);
    std::vector<std::pair<int, std::string>> links;
    auto progress = decode_link_dump(m.bytes, links);
    REQUIRE(progress);
    CHECK(progress->interrupted);
    REQUIRE(links.size() == 2);
    CHECK(links[1] == std::pair<int, std::string>{7, "eth0"});
}

TEST_CASE("rtnetlink: the real loopback address is listed", "[netlink]") {
    auto addresses = list_addresses("");
    REQUIRE(addresses);
    bool found = false;
    for (const auto& entry : *addresses)
        found = found || (entry.ifname == "lo" && entry.address.str() == "127.0.0.1/8");
    CHECK(found);
}

TEST_CASE("rtnetlink: one interface's addresses, without a link dump", "[netlink]") {
    auto everything = list_addresses("");
    REQUIRE(everything);
    auto on_lo = list_addresses("", "lo");
    REQUIRE(on_lo);
    // Exactly the full listing's entries named lo, in the same order.
    std::vector<std::string> expected, got;
    for (const auto& entry : *everything)
        if (entry.ifname == "lo")
            expected.push_back(entry.address.str());
    for (const auto& entry : *on_lo) {
        CHECK(entry.ifname == "lo");
        got.push_back(entry.address.str());
    }
    CHECK(got == expected);
    CHECK_FALSE(got.empty());
    // No such interface: nothing is on it, and that is no error.
    auto on_missing = list_addresses("", "kn-no-such0");
    REQUIRE(on_missing);
    CHECK(on_missing->empty());
    // A name that is not one is refused before any system call.
    CHECK_FALSE(list_addresses("", "a/b"));
}

namespace {

AddressLister fake(std::vector<std::string> on_eth0) {
    return [on_eth0](const std::string&, const std::string&) -> Result<std::vector<KernelAddress>> {
        std::vector<KernelAddress> out;
        for (const auto& text : on_eth0) {
            KernelAddress entry;
            entry.ifindex = 2;
            entry.ifname = "eth0";
            entry.address = parse_ip_address(text).value();
            out.push_back(entry);
        }
        return out;
    };
}

Event argv_event(State state) {
    Event e;
    e.name = "VI_1";
    e.state = state;
    e.source = Source::argv;
    e.time_usec = realtime_usec();
    return e;
}

}  // namespace

TEST_CASE("reconcile: the interface decides which racing argv transition is stale", "[reconcile]") {
    InstanceSettings settings;
    settings.interface = "eth0";
    settings.addresses = {"192.0.2.100/24", "2001:db8::100/64"};
    auto with = fake({"192.0.2.100/24", "2001:db8::100/64"});
    auto without = fake({"192.0.2.1/24"});
    CHECK_FALSE(reconcile(argv_event(State::master), settings, with).contradiction);
    CHECK(reconcile(argv_event(State::master), settings, without).contradiction);
    CHECK(reconcile(argv_event(State::backup), settings, with).contradiction);
    CHECK_FALSE(reconcile(argv_event(State::backup), settings, without).contradiction);
    CHECK(reconcile(argv_event(State::fault), settings, with).contradiction);
    // The address on another interface does not count.
    settings.interface = "eth1";
    CHECK(reconcile(argv_event(State::master), settings, with).contradiction);
    // A lister failure never blocks recording: noted, applied.
    AddressLister broken = [](const std::string&, const std::string&) -> Result<std::vector<KernelAddress>> {
        return make_error(ErrorKind::system, "no namespace");
    };
    auto verdict = reconcile(argv_event(State::master), settings, broken);
    CHECK_FALSE(verdict.contradiction);
    CHECK_THAT(verdict.note, Catch::Contains("no namespace"));

    auto sequenced = argv_event(State::master);
    sequenced.sequence = 5;
    CHECK_FALSE(needs_reconciliation(sequenced, settings));
    CHECK_FALSE(needs_reconciliation(argv_event(State::stop), settings));
    CHECK_FALSE(needs_reconciliation(argv_event(State::master), InstanceSettings{}));
}

TEST_CASE("reconcile: wired into dispatch for argv transitions without a sequence", "[reconcile][dispatch]") {
    TempDir tmp;
    Config config;
    config.state_dir = tmp.str("state");
    InstanceSettings vi1;
    vi1.interface = "eth0";
    vi1.addresses = {"192.0.2.100/24"};
    config.instances["VI_1"] = vi1;
    Seams seams;
    seams.addresses = fake({});  // keepalived already removed the address: BACKUP won
    auto dispatcher = Dispatcher::open(config, seams);
    REQUIRE(dispatcher);
    auto backup = argv_event(State::backup);
    REQUIRE(dispatcher->handle(std::span<const Event>(&backup, 1)));
    auto late_master = argv_event(State::master);  // the older MASTER notify, arriving late
    auto outcomes = dispatcher->handle(std::span<const Event>(&late_master, 1));
    REQUIRE(outcomes);
    CHECK(outcomes->front().status == Status::stale);
    CHECK(read_file(tmp.path() / "state/VI_1.state") == "BACKUP\n");
}
