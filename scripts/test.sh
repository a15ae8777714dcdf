#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what is needed, builds, and runs the whole suite (unit,
# integration, e2e). Root-only tiers skip themselves with a message when
# they cannot run. The unity build runs the suite a second time, as a check
# that translation units do not depend on each other's internals, and the
# asan build a third time under AddressSanitizer and UBSan.
#   scripts/test.sh            dev (Debug, -Werror), unity and asan builds
#   KANOTIFY_PRESETS="asan" scripts/test.sh   any list of CMakePresets.json presets
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

presets=${KANOTIFY_PRESETS:-"dev unity asan"}
jobs=$(nproc)
status=0
for preset in $presets; do
  echo "=== preset $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== preset $preset: tests"
  if ! ctest --preset "$preset" -j "$jobs" --timeout 600; then
    status=1
  fi
done
exit $status
