// SPDX-License-Identifier: GPL-2.0-or-later
// Differential: read_generic_notify(), the quick reader of keepalived's
// generic notify command line, against CLI11 with the front-end's own
// option definitions. The input is split on NUL bytes into the words that
// follow the program name in argv. Wherever the quick reader answers,
// CLI11 must accept the same words and read the same values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "argv_words.hpp"
#include "notify_args.hpp"

using namespace kanotify::cli;

namespace {

constexpr std::size_t max_input = 4096;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > max_input)
        return -1;
    auto words = kanotify::fuzz::split_on_nul(std::string_view(reinterpret_cast<const char*>(data), size));
    words.insert(words.begin(), "kanotify");
    std::vector<char*> argv;
    for (auto& w : words)
        argv.push_back(w.data());
    argv.push_back(nullptr);
    int argc = static_cast<int>(words.size());

    auto quick = read_generic_notify(argc, argv.data());
    if (!quick)
        return 0;
    check(quick->words.size() == 4);
    NotifyArgs full;
    CLI::App app{"fuzz", "kanotify"};
    add_notify_options(app, full);
    try {
        app.parse(argc, argv.data());
    } catch (const CLI::ParseError&) {
        check(false);  // the quick reader accepted what CLI11 refuses
    }
    check(quick->global.config_path == full.global.config_path);
    check(quick->global.state_dir == full.global.state_dir);
    check(quick->global.log_file == full.global.log_file);
    check(quick->global.debug == full.global.debug);
    check(quick->global.log_target == full.global.log_target);
    check(quick->global.socket_path == full.global.socket_path);
    check(!full.flags.instance && !full.flags.group && !full.flags.state && !full.flags.priority);
    check(quick->words == full.words);
    check(full.sequence == 0 && !full.netns && !full.interface && !full.router_id && full.addresses.empty());
    return 0;
}
