// SPDX-License-Identifier: GPL-2.0-or-later
#include "effective_capability.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace kanotify {

namespace {

// Read by every EffectiveCapability, including in a forked child: a plain
// atomic flag, lock-free.
std::atomic<bool> effective_on_demand_flag{false};

// The raw system calls (glibc has no wrapper; libcap-ng would be a library
// to load, and /proc to read, for two calls on the announcer's first-frame
// path).
bool capget_thread(__user_cap_data_struct (&data)[2]) noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capget, &header, data) == 0;
}

bool capset_thread(const __user_cap_data_struct (&data)[2]) noexcept {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capset, &header, data) == 0;
}

std::uint64_t cap_bits(std::uint32_t low, std::uint32_t high) noexcept {
    return static_cast<std::uint64_t>(high) << 32 | low;
}

}  // namespace

void set_effective_on_demand(bool on) noexcept {
    effective_on_demand_flag.store(on, std::memory_order_release);
}

bool effective_on_demand() noexcept {
    return effective_on_demand_flag.load(std::memory_order_acquire);
}

CapabilitySets thread_capabilities() noexcept {
    __user_cap_data_struct data[2]{};
    if (!capget_thread(data))
        return {};
    return {cap_bits(data[0].permitted, data[1].permitted), cap_bits(data[0].effective, data[1].effective)};
}

bool set_thread_capabilities(CapabilitySets sets) noexcept {
    __user_cap_data_struct data[2]{};
    data[0].permitted = static_cast<std::uint32_t>(sets.permitted);
    data[1].permitted = static_cast<std::uint32_t>(sets.permitted >> 32);
    data[0].effective = static_cast<std::uint32_t>(sets.effective);
    data[1].effective = static_cast<std::uint32_t>(sets.effective >> 32);
    return capset_thread(data);
}

EffectiveCapability::EffectiveCapability(std::initializer_list<unsigned> capabilities) noexcept {
    if (!effective_on_demand())
        return;
    int saved_errno = errno;
    __user_cap_data_struct data[2]{};
    if (!capget_thread(data)) {
        errno = saved_errno;
        return;
    }
    auto permitted = cap_bits(data[0].permitted, data[1].permitted);
    auto previous = cap_bits(data[0].effective, data[1].effective);
    for (int half = 0; half < 2; ++half) {
        previous_[half][0] = data[half].permitted;
        previous_[half][1] = data[half].effective;
        previous_[half][2] = data[half].inheritable;
    }
    std::uint64_t wanted = 0;
    for (auto cap : capabilities)
        if (cap < 64)
            wanted |= std::uint64_t{1} << cap;
    // Only what is permitted (capset refuses anything else), and nothing to
    // do when it is all raised already (a nested scope).
    auto effective = previous | (wanted & permitted);
    if (effective != previous) {
        data[0].effective = static_cast<std::uint32_t>(effective);
        data[1].effective = static_cast<std::uint32_t>(effective >> 32);
        raised_ = capset_thread(data);
    }
    // The operation that follows reports its own errno, not ours.
    errno = saved_errno;
}

EffectiveCapability::~EffectiveCapability() {
    if (!raised_)
        return;
    int saved_errno = errno;
    // No capget: the sets are what the constructor saw with the raise on
    // top (a scope nested inside puts back what it found), and capset is
    // the costly call of the two (new credentials each time).
    __user_cap_data_struct data[2]{};
    for (int half = 0; half < 2; ++half) {
        data[half].permitted = previous_[half][0];
        data[half].effective = previous_[half][1];
        data[half].inheritable = previous_[half][2];
    }
    if (!capset_thread(data) && capget_thread(data)) {
        // The permitted set shrank meanwhile: lower the effective set to
        // what it was, within what is left.
        data[0].effective = previous_[0][1] & data[0].permitted;
        data[1].effective = previous_[1][1] & data[1].permitted;
        (void)capset_thread(data);
    }
    errno = saved_errno;
}

}  // namespace kanotify
