#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what is needed, builds, and runs the whole suite (unit,
# integration, e2e). Root-only tiers skip themselves with a message when
# they cannot run. The unity build runs the suite a second time, as a check
# that translation units do not depend on each other's internals, and the
# asan build a third time under AddressSanitizer and UBSan. Then each
# libFuzzer target runs for a bounded time (clang, the fuzz preset).
#   scripts/test.sh            dev (Debug, -Werror), unity and asan builds
#   KANOTIFY_PRESETS="asan" scripts/test.sh   any list of CMakePresets.json presets
#   KANOTIFY_FUZZ_SECONDS=600 scripts/test.sh  longer fuzzing (0: none)
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
  # The unity preset is there to prove the sources build as one translation
  # unit per target (clashing names, missing includes); its end-to-end tests
  # would run the same keepalived scenarios as dev's and asan's for two
  # more minutes, so it runs the unit and integration tiers only.
  ctest_args=()
  [ "$preset" != unity ] || ctest_args=(-LE e2e)
  if ! ctest --preset "$preset" -j "$jobs" --timeout 600 "${ctest_args[@]}"; then
    status=1
  fi
done

# Each libFuzzer target for a bounded time (KANOTIFY_FUZZ_SECONDS, default
# 20, which keeps a CI run within its budget; 0 leaves it out), on a
# scratch copy of its committed corpus: a crash or a broken invariant fails the run and prints the fuzzer's report (the input
# is saved as crash-* beside the scratch corpus). Only the fuzz binaries are
# built in the clang preset.
fuzz_seconds=${KANOTIFY_FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" != 0 ]; then
  echo "=== fuzz: each target for ${fuzz_seconds} s"
  fuzz_targets=$(sed -n 's/^set(kanotify_fuzz_targets \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)
  cmake --preset fuzz >/dev/null
  fuzzdir=$(mktemp -d "${TMPDIR:-/tmp}/kanotify-fuzz.XXXXXX")
  fuzz_failed=0
  for target in $fuzz_targets; do
    if ! cmake --build --preset fuzz -j "$jobs" --target "kanotify_fuzz_$target"; then
      fuzz_failed=1
      continue
    fi
    mkdir "$fuzzdir/$target"
    cp tests/fuzz/corpus/"$target"/* "$fuzzdir/$target/"
    if build/fuzz/tests/fuzz/kanotify_fuzz_"$target" "$fuzzdir/$target" -max_total_time="$fuzz_seconds" \
        -artifact_prefix="$fuzzdir/$target-" >"$fuzzdir/$target.log" 2>&1; then
      echo "fuzz: $target: $(grep -o 'Done [0-9]* runs' "$fuzzdir/$target.log" || echo done)"
    else
      echo "fuzz: $target FAILED (inputs kept in $fuzzdir):"
      tail -n 40 "$fuzzdir/$target.log"
      fuzz_failed=1
    fi
  done
  if [ "$fuzz_failed" = 0 ]; then
    rm -rf -- "$fuzzdir"
  else
    status=1
  fi
fi

# The installed-package tier, once (not per preset): the Debian packages
# built from the working copy (lintian must report no error or warning),
# installed, Debian's keepalived wired to them, one failover, a signal on a
# system bus reading the installed policy, purge; then the RPM spec built
# with Debian's rpm (its unit tests already ran in the Debian build).
# KANOTIFY_PACKAGE_TEST=0 leaves it out.
if [ "${KANOTIFY_PACKAGE_TEST:-1}" != 0 ]; then
  echo "=== packages: build-deb, lintian, install, smoke test, purge; build-rpm"
  pkgdir=$(mktemp -d "${TMPDIR:-/tmp}/kanotify-packages.XXXXXX")
  if scripts/build-deb.sh --worktree "$pkgdir/deb"; then
    rc=0
    bash tests/e2e/package_smoke.sh "$pkgdir/deb" || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 77 ] || status=1
  else
    status=1
  fi
  scripts/build-rpm.sh --worktree "$pkgdir/rpm" -- --without check || status=1
  rm -rf -- "$pkgdir"
fi
exit $status
