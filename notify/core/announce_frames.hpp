// SPDX-License-Identifier: GPL-2.0-or-later
// The bytes of the announcements: gratuitous ARP (request or reply) and the
// IPv6 unsolicited neighbour advertisement, whole Ethernet frames ready for
// an AF_PACKET SOCK_RAW socket. Pure functions, golden-tested against
// frames keepalived itself sent (tests/fixtures/announce).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace kanotify {

using Mac = std::array<std::uint8_t, 6>;
using Ipv4Bytes = std::array<std::uint8_t, 4>;
using Ipv6Bytes = std::array<std::uint8_t, 16>;

// Ethernet 14 + ARP 28. Not padded to 60 bytes: the driver pads short
// frames, and keepalived hands the kernel the same 42 bytes.
inline constexpr std::size_t arp_frame_size = 42;
// Ethernet 14 + IPv6 40 + NA 24 + target link-layer address option 8.
inline constexpr std::size_t na_frame_size = 86;

enum class ArpOp : std::uint16_t { request = 1, reply = 2 };

// Ethernet broadcast, from `mac`; sender and target protocol address both
// `address`. A request carries the broadcast address as target hardware
// address (what keepalived sends); a reply carries our own MAC there (what
// `arping -A` sends), for switches and hosts that learn from replies only.
[[nodiscard]] std::array<std::uint8_t, arp_frame_size> build_gratuitous_arp(ArpOp op, const Mac& mac,
                                                                            const Ipv4Bytes& address);

// To ff02::1 (33:33:00:00:00:01) from `mac`, IPv6 source and target
// `address`, hop limit 255, Override set, Solicited clear, Router set when
// `router` (the interface forwards), target link-layer address option.
[[nodiscard]] std::array<std::uint8_t, na_frame_size> build_unsolicited_na(const Mac& mac, const Ipv6Bytes& address,
                                                                           bool router);

// The ICMPv6 checksum (RFC 4443 2.3) of `icmp` (its checksum field zero)
// between `source` and `destination`.
[[nodiscard]] std::uint16_t icmpv6_checksum(const Ipv6Bytes& source, const Ipv6Bytes& destination,
                                            std::span<const std::uint8_t> icmp);

}  // namespace kanotify
