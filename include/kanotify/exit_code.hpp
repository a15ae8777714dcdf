// SPDX-License-Identifier: GPL-2.0-or-later
// The exit codes every front-end uses (sysexits.h values); keepalived ignores
// them, the journal and the log keep them. Mapped in exactly one place.
#pragma once

#include "kanotify/error.hpp"

namespace kanotify {

enum ExitCode : int {
    exit_ok = 0,
    exit_usage = 64,        // EX_USAGE
    exit_invalid = 65,      // EX_DATAERR
    exit_unavailable = 69,  // EX_UNAVAILABLE
    exit_system = 71,       // EX_OSERR
    exit_timeout = 75,      // EX_TEMPFAIL (kanotify wait)
};

[[nodiscard]] int exit_code_for(ErrorKind kind) noexcept;

}  // namespace kanotify
