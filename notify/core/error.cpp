// SPDX-License-Identifier: GPL-2.0-or-later
#include "kanotify/error.hpp"

#include "kanotify/exit_code.hpp"

namespace kanotify {

std::string Error::describe() const {
    if (code)
        return message + ": " + code.message();
    return message;
}

tl::unexpected<Error> make_error(ErrorKind kind, std::string message) {
    return tl::unexpected<Error>(Error{kind, {}, std::move(message)});
}

tl::unexpected<Error> system_error(std::string context, int err) {
    return tl::unexpected<Error>(
        Error{ErrorKind::system, std::error_code(err, std::system_category()), std::move(context)});
}

int exit_code_for(ErrorKind kind) noexcept {
    switch (kind) {
    case ErrorKind::usage:
    case ErrorKind::config:
        return exit_usage;
    case ErrorKind::invalid:
        return exit_invalid;
    case ErrorKind::unavailable:
        return exit_unavailable;
    case ErrorKind::system:
        return exit_system;
    }
    return exit_system;
}

}  // namespace kanotify
