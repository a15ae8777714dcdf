// SPDX-License-Identifier: GPL-2.0-or-later
#include "reconcile.hpp"

#include <fmt/format.h>

namespace kanotify {

bool needs_reconciliation(const Event& event, const InstanceSettings& settings) {
    if (event.sequence != 0 || event.kind != Kind::instance || settings.addresses.empty())
        return false;
    // STOP and DELETED are left alone: they end the instance whatever the
    // interface shows, and keepalived's order around them is not a promise.
    switch (event.state) {
    case State::master:
    case State::master_rx_lower_pri:
    case State::backup:
    case State::fault:
        return true;
    default:
        return false;
    }
}

Verdict reconcile(const Event& event, const InstanceSettings& settings, const AddressLister& list) {
    Verdict verdict;
    auto kernel = list(settings.netns, settings.interface);
    if (!kernel) {
        verdict.note = fmt::format("not reconciled with the interface: {}", kernel.error().describe());
        return verdict;
    }
    std::vector<std::string> present;
    for (const auto& configured : settings.addresses) {
        auto wanted = parse_ip_address(configured);
        if (!wanted)
            continue;  // the configuration was validated when read
        for (const auto& entry : *kernel)
            if ((settings.interface.empty() || entry.ifname == settings.interface) &&
                entry.address.same_address(*wanted)) {
                present.push_back(configured);
                break;
            }
    }
    auto where = settings.interface.empty() ? std::string("any interface")
                                            : fmt::format("interface {}", settings.interface);
    if (!settings.netns.empty())
        where += fmt::format(" in namespace {}", settings.netns);
    bool expects_addresses = event.state == State::master || event.state == State::master_rx_lower_pri;
    if (expects_addresses && present.empty())
        verdict.contradiction = fmt::format(
            "none of the instance's addresses ({}) is on {}: keepalived removed them for a later transition",
            fmt::join(settings.addresses, ", "), where);
    else if (!expects_addresses && !present.empty())
        verdict.contradiction =
            fmt::format("the instance's addresses ({}) are on {}: keepalived added them for a later MASTER",
                        fmt::join(present, ", "), where);
    return verdict;
}

}  // namespace kanotify
