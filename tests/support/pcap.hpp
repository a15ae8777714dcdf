// SPDX-License-Identifier: GPL-2.0-or-later
// Reads classic pcap files (what tcpdump -w writes): the frames and their
// capture timestamps. Enough for fixtures and captures the tests make.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace kanotify::test {

struct CapturedFrame {
    std::int64_t time_usec = 0;
    std::vector<std::uint8_t> bytes;
};

inline std::vector<CapturedFrame> read_pcap(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot open " + path);
    std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto u32 = [&](std::size_t at, bool swap) {
        std::uint32_t v = 0;
        std::memcpy(&v, data.data() + at, 4);
        return swap ? __builtin_bswap32(v) : v;
    };
    if (data.size() < 24)
        throw std::runtime_error(path + " is too short for a pcap file");
    std::uint32_t magic = u32(0, false);
    bool swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
    bool nano = magic == 0xa1b23c4d || magic == 0x4d3cb2a1;
    if (!swap && magic != 0xa1b2c3d4 && magic != 0xa1b23c4d)
        throw std::runtime_error(path + " is not a pcap file");
    if (u32(20, swap) != 1)
        throw std::runtime_error(path + " is not an Ethernet capture");
    std::vector<CapturedFrame> frames;
    std::size_t at = 24;
    while (at + 16 <= data.size()) {
        std::int64_t sec = u32(at, swap), frac = u32(at + 4, swap);
        std::uint32_t caplen = u32(at + 8, swap);
        at += 16;
        if (at + caplen > data.size())
            break;  // a capture cut short by the kill
        CapturedFrame f;
        f.time_usec = sec * 1000000 + (nano ? frac / 1000 : frac);
        f.bytes.assign(data.begin() + static_cast<std::ptrdiff_t>(at),
                       data.begin() + static_cast<std::ptrdiff_t>(at + caplen));
        frames.push_back(std::move(f));
        at += caplen;
    }
    return frames;
}

}  // namespace kanotify::test
