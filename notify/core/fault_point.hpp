// SPDX-License-Identifier: GPL-2.0-or-later
// Test-only crash points. The crash-point sweep kills the process at every
// step of a transition (between each write, sync, rename and delivery) and
// checks what survives. The front-end arms one point from
// KANOTIFY_TEST_CRASH_AT (read with secure_getenv, so never in a set-uid or
// AT_SECURE context); unarmed, a point costs one comparison.
#pragma once

#include <string>
#include <string_view>

namespace kanotify {

void arm_crash_point(std::string step);
// SIGKILLs this process when `step` is the armed point.
void crash_point(std::string_view step) noexcept;

}  // namespace kanotify
