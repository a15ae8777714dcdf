// SPDX-License-Identifier: GPL-2.0-or-later
// Without a sequence (plain argv invocations race: keepalived never waits
// for its notify scripts), the kernel is the referee: keepalived adds an
// instance's addresses before it runs the MASTER notify and removes them
// before BACKUP and FAULT ones. A transition the interface contradicts was
// overtaken by a later one and is not applied.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kanotify/config.hpp"
#include "kanotify/event.hpp"
#include "rtnl_addresses.hpp"

namespace kanotify {

// The addresses in a namespace ("" = ours); those of one interface when
// one is given (list_addresses).
using AddressLister =
    std::function<Result<std::vector<KernelAddress>>(const std::string& netns, const std::string& interface)>;

struct Verdict {
    std::optional<std::string> contradiction;  // set: stale, with the reason
    std::string note;                          // e.g. why it could not be checked
};

// Whether reconciliation applies to this event at all.
[[nodiscard]] bool needs_reconciliation(const Event& event, const InstanceSettings& settings);

[[nodiscard]] Verdict reconcile(const Event& event, const InstanceSettings& settings, const AddressLister& list);

}  // namespace kanotify
