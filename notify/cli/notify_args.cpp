// SPDX-License-Identifier: GPL-2.0-or-later
#include "notify_args.hpp"

#include <string_view>

namespace kanotify::cli {

void add_notify_options(CLI::App& app, NotifyArgs& args) {
    add_global_options(app, args.global);
    app.add_option("--instance", args.flags.instance, "instance name (explicit form)");
    app.add_option("--group", args.flags.group, "sync group name (explicit form)");
    app.add_option("--state", args.flags.state, "master|backup|fault|stop|deleted|master_rx_lower_pri|...");
    app.add_option("--priority", args.flags.priority, "priority 0-255 (explicit form, optional)");
    app.add_option("--sequence", args.sequence,
                   "ordering stamp of this transition when the caller knows it (older ones are not applied)");
    app.add_option("--namespace", args.netns, "the instance's network namespace (name under /run/netns, or a path)");
    app.add_option("--interface", args.interface, "the instance's interface");
    app.add_option("--address", args.addresses,
                   "an address of the instance (repeatable); where set, a transition the interface contradicts "
                   "is journalled as stale")
        ->allow_extra_args(false);
    app.add_option("--router-id", args.router_id, "neutron router id: adds neutron's headers to socket deliveries");
    app.add_option("words", args.words, "TYPE NAME STATE PRIORITY, as keepalived's generic notify appends them");
}

std::optional<NotifyArgs> read_generic_notify(int argc, char** argv) {
    constexpr int word_count = 4;
    if (argc < 1 + word_count)
        return std::nullopt;
    NotifyArgs args;
    bool seen_config = false;
    bool seen_log_target = false;
    int i = 1;
    for (; i < argc - word_count; ++i) {
        std::string_view option = argv[i];
        if (option == "--debug") {
            if (args.global.debug)
                return std::nullopt;
            args.global.debug = true;
            continue;
        }
        // Every other option takes the next word as its value.
        if (i + 1 >= argc - word_count || argv[i + 1][0] == '-')
            return std::nullopt;
        std::string value = argv[++i];
        auto once = [&value](std::optional<std::string>& slot) {
            if (slot)
                return false;
            slot = std::move(value);
            return true;
        };
        bool taken = false;
        if (option == "--config") {
            taken = !seen_config;
            seen_config = true;
            args.global.config_path = std::move(value);
        } else if (option == "--log-target") {
            taken = !seen_log_target && (value == "auto" || value == "journal" || value == "stderr");
            seen_log_target = true;
            args.global.log_target = std::move(value);
        } else if (option == "--state-dir") {
            taken = once(args.global.state_dir);
        } else if (option == "--log-file") {
            taken = once(args.global.log_file);
        } else if (option == "--socket") {
            taken = once(args.global.socket_path);
        }
        if (!taken)
            return std::nullopt;
    }
    for (; i < argc; ++i) {
        std::string_view word = argv[i];
        // CLI11 reads a list's value "[a,b]" as the values a and b.
        if (word.starts_with('-') || (word.starts_with('[') && word.ends_with(']')))
            return std::nullopt;
        args.words.emplace_back(word);
    }
    return args;
}

}  // namespace kanotify::cli
