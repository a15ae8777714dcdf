// SPDX-License-Identifier: GPL-2.0-or-later
#include "announce_frames.hpp"

#include <algorithm>

namespace kanotify {

namespace {

constexpr Mac broadcast_mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// RFC 2464 section 7: 33:33 and the low 32 bits of ff02::1.
constexpr Mac all_nodes_mac{0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
constexpr Ipv6Bytes all_nodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};

constexpr std::uint16_t ethertype_arp = 0x0806;
constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_ipv6 = 0x86dd;
constexpr std::uint16_t arphrd_ether = 1;
constexpr std::uint8_t ipproto_icmpv6 = 58;
constexpr std::uint8_t nd_neighbor_advert = 136;
constexpr std::uint8_t nd_opt_target_linkaddr = 2;
constexpr std::uint8_t na_flag_router = 0x80;
constexpr std::uint8_t na_flag_override = 0x20;

// Big-endian writes at a cursor.
class Writer {
  public:
    explicit Writer(std::span<std::uint8_t> out) : out_(out) {}
    void u8(std::uint8_t v) { out_[at_++] = v; }
    void u16(std::uint16_t v) {
        u8(static_cast<std::uint8_t>(v >> 8));
        u8(static_cast<std::uint8_t>(v & 0xff));
    }
    void bytes(std::span<const std::uint8_t> b) {
        std::copy(b.begin(), b.end(), out_.begin() + static_cast<std::ptrdiff_t>(at_));
        at_ += b.size();
    }
    void zeros(std::size_t n) {
        std::fill_n(out_.begin() + static_cast<std::ptrdiff_t>(at_), n, std::uint8_t{0});
        at_ += n;
    }
    [[nodiscard]] std::size_t at() const { return at_; }

  private:
    std::span<std::uint8_t> out_;
    std::size_t at_ = 0;
};

}  // namespace

std::array<std::uint8_t, arp_frame_size> build_gratuitous_arp(ArpOp op, const Mac& mac, const Ipv4Bytes& address) {
    std::array<std::uint8_t, arp_frame_size> frame{};
    Writer w(frame);
    w.bytes(broadcast_mac);
    w.bytes(mac);
    w.u16(ethertype_arp);
    w.u16(arphrd_ether);
    w.u16(ethertype_ipv4);
    w.u8(6);  // hardware address length
    w.u8(4);  // protocol address length
    w.u16(static_cast<std::uint16_t>(op));
    w.bytes(mac);
    w.bytes(address);
    w.bytes(op == ArpOp::request ? broadcast_mac : mac);
    w.bytes(address);
    return frame;
}

std::uint16_t icmpv6_checksum(const Ipv6Bytes& source, const Ipv6Bytes& destination,
                              std::span<const std::uint8_t> icmp) {
    std::uint32_t sum = 0;
    auto add = [&sum](std::span<const std::uint8_t> b) {
        for (std::size_t i = 0; i + 1 < b.size(); i += 2)
            sum += static_cast<std::uint32_t>(b[i] << 8 | b[i + 1]);
        if (b.size() % 2)
            sum += static_cast<std::uint32_t>(b.back() << 8);
    };
    // The pseudo-header: source, destination, upper-layer length, next header.
    add(source);
    add(destination);
    auto length = static_cast<std::uint32_t>(icmp.size());
    sum += length >> 16;
    sum += length & 0xffff;
    sum += ipproto_icmpv6;
    add(icmp);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::array<std::uint8_t, na_frame_size> build_unsolicited_na(const Mac& mac, const Ipv6Bytes& address, bool router) {
    constexpr std::uint16_t icmp_length = 24 + 8;
    std::array<std::uint8_t, na_frame_size> frame{};
    Writer w(frame);
    w.bytes(all_nodes_mac);
    w.bytes(mac);
    w.u16(ethertype_ipv6);
    // IPv6 header: version 6, traffic class and flow label zero.
    w.u8(0x60);
    w.zeros(3);
    w.u16(icmp_length);
    w.u8(ipproto_icmpv6);
    w.u8(255);  // RFC 4861 7.1.2: receivers drop an NA with any other hop limit
    w.bytes(address);
    w.bytes(all_nodes);
    auto icmp_at = w.at();
    w.u8(nd_neighbor_advert);
    w.u8(0);    // code
    w.u16(0);   // checksum, filled below
    w.u8(static_cast<std::uint8_t>(na_flag_override | (router ? na_flag_router : 0)));
    w.zeros(3);
    w.bytes(address);  // target
    w.u8(nd_opt_target_linkaddr);
    w.u8(1);  // option length in units of 8 bytes
    w.bytes(mac);
    auto icmp = std::span<const std::uint8_t>(frame).subspan(icmp_at, icmp_length);
    auto sum = icmpv6_checksum(address, all_nodes, icmp);
    frame[icmp_at + 2] = static_cast<std::uint8_t>(sum >> 8);
    frame[icmp_at + 3] = static_cast<std::uint8_t>(sum & 0xff);
    return frame;
}

}  // namespace kanotify
