// SPDX-License-Identifier: GPL-2.0-or-later
// The argv notify front-end as a callable: the `kanotify` binary runs it
// from main(), the preload module (plugin/) in keepalived's forked child
// instead of an exec. Both parse the same arguments with the same code and
// end with the same exit code; only where the event came from differs.
#pragma once

#include <cstdint>
#include <string_view>

#include "kanotify/event.hpp"

namespace kanotify::cli {

struct NotifyOrigin {
    Source source = Source::argv;
    // The caller's ordering stamp (the preload module's fork sequence); an
    // explicit --sequence on the command line wins over it. 0: none.
    std::uint64_t sequence = 0;
};

int run_notify(int argc, char** argv, const NotifyOrigin& origin);

// run_notify with main()'s last line of defence: an exception becomes the
// exit code main() would have returned, with the same message.
int run_notify_guarded(int argc, char** argv, const NotifyOrigin& origin) noexcept;

// The words main() treats as a subcommand when they come first (anything
// else is the notify front-end). The preload module lets those exec.
[[nodiscard]] bool is_subcommand_name(std::string_view word) noexcept;

}  // namespace kanotify::cli
