// SPDX-License-Identifier: GPL-2.0-or-later
// A capability in the effective set only for the operation that needs it.
//
// Once keep_only() (privileges.hpp) has reduced a root process, the
// capabilities its configuration needs stay in the PERMITTED set and the
// EFFECTIVE set is empty: between two uses the process can do nothing more
// than any other process of uid 0 without capabilities. An
// EffectiveCapability raises the named capabilities (those of them that are
// permitted) into the calling thread's effective set for its lifetime and
// puts the set back as it was when it ends:
//
//     EffectiveCapability raise({CAP_NET_RAW});
//     fd = ::socket(AF_PACKET, ...);
//
// Without keep_only() (not root, tests, the neutron monitor) it does
// nothing at all, not even a system call. With it, three system calls
// (capget and capset on entry, capset on exit): no allocation, no lock,
// nothing but the calls themselves, so it may also be used in a child
// between fork() and exec(). Capability sets belong to a thread: the raise is seen by the
// calling thread only, which is where the operation runs.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace kanotify {

class EffectiveCapability {
  public:
    explicit EffectiveCapability(std::initializer_list<unsigned> capabilities) noexcept;
    ~EffectiveCapability();
    EffectiveCapability(const EffectiveCapability&) = delete;
    EffectiveCapability& operator=(const EffectiveCapability&) = delete;

    // Whether the set was changed (false: nothing to do, or not permitted).
    [[nodiscard]] bool raised() const noexcept { return raised_; }

  private:
    // The thread's sets as they were (capget's layout: two 32-bit halves
    // of permitted, effective, inheritable), put back as they are on exit.
    std::uint32_t previous_[2][3] = {};
    bool raised_ = false;
};

// Set by keep_only() once the effective set was emptied; before that (and
// in a process that never calls it) every EffectiveCapability is a no-op.
void set_effective_on_demand(bool on) noexcept;
[[nodiscard]] bool effective_on_demand() noexcept;

// The calling thread's permitted and effective sets (bit N = capability N),
// read with capget(); {0, 0} when capget fails.
struct CapabilitySets {
    std::uint64_t permitted = 0;
    std::uint64_t effective = 0;
};
[[nodiscard]] CapabilitySets thread_capabilities() noexcept;

// Sets the calling thread's permitted and effective sets (inheritable
// emptied) with one capset(); false, errno set, when the kernel refuses
// (a capability asked for that is not permitted). keep_only()'s tool.
[[nodiscard]] bool set_thread_capabilities(CapabilitySets sets) noexcept;

}  // namespace kanotify
