// SPDX-License-Identifier: GPL-2.0-or-later
// What tests replace in the dispatcher: fault points and temporary names in
// the state store, and the kernel's view of addresses.
#pragma once

#include "reconcile.hpp"
#include "state_store.hpp"

namespace kanotify {

struct Seams {
    StoreHooks store;
    AddressLister addresses;  // empty: list_addresses (rtnetlink)
};

}  // namespace kanotify
