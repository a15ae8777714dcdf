// SPDX-License-Identifier: GPL-2.0-or-later
// One JSON object on one line, as the journal, pending entries and request
// bodies hold them. Invalid UTF-8 (hostile input quoted into a record) is
// replaced, never thrown about.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace kanotify {

inline std::string json_line(const nlohmann::ordered_json& value) {
    return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace kanotify
