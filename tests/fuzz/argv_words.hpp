// SPDX-License-Identifier: GPL-2.0-or-later
// The command-line fuzz targets' input: words separated by NUL bytes, the
// way they arrive in argv.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kanotify::fuzz {

inline std::vector<std::string> split_on_nul(std::string_view input) {
    std::vector<std::string> words;
    while (true) {
        auto nul = input.find('\0');
        words.emplace_back(input.substr(0, nul));
        if (nul == std::string_view::npos)
            return words;
        input.remove_prefix(nul + 1);
    }
}

}  // namespace kanotify::fuzz
