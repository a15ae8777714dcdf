// SPDX-License-Identifier: GPL-2.0-or-later
// The core's error model: expected failures are values, never exceptions
// crossing a front-end boundary. Each error carries the category the
// front-end maps to an exit code, an errno where one applies, and a message
// that already quotes the offending input.
#pragma once

#include <string>
#include <system_error>
#include <tl/expected.hpp>

namespace kanotify {

enum class ErrorKind {
    usage,        // the command line itself is wrong (exit 64)
    invalid,      // the event or an input line is invalid (exit 65)
    config,       // the configuration file is unusable (exit 64: how we were invoked)
    unavailable,  // a consumer stayed unreachable after its retries (exit 69)
    system,       // the operating system refused something (exit 71)
};

struct Error {
    ErrorKind kind = ErrorKind::system;
    std::error_code code;   // errno in system_category, when one applies
    std::string message;    // what failed, with the offending input quoted

    [[nodiscard]] std::string describe() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

[[nodiscard]] tl::unexpected<Error> make_error(ErrorKind kind, std::string message);
// A system error from errno (or an explicit errno value) with context.
[[nodiscard]] tl::unexpected<Error> system_error(std::string context, int err);

}  // namespace kanotify
