#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end smoke test of the container harness (tests/e2e/lib/nspawn.sh):
# boots a real systemd with systemd-nspawn on a cached minimal Debian tree,
# installs a trivial unit, starts and stops it over the container's system
# bus with busctl, powers the container off and checks that nothing of it
# is left (no process, no per-run directory, no cgroup, no mount).
#
#   tests/e2e/systemd_smoke.sh
#
# Needs root and systemd-nspawn (Debian package systemd-container); the
# first run also needs debootstrap and the apt mirror, and takes about a
# minute to build the cached tree (NS_CACHE, default
# /var/cache/kanotify-test/debian-bookworm-systemd). Where nspawn cannot run
# it prints "skipped: <reason>" and exits 77.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/nspawn.sh
source "$here/lib/nspawn.sh"

UNIT=kanotify-smoke.service
STATE_TIMEOUT=10000 # ms for a unit to reach a state after the call

failures=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
die() {
	echo "FAIL: $*"
	ns_console_tail 30 | sed 's/^/  console: /'
	exit 1
}
skip() {
	echo "skipped: $*"
	exit 77
}

trap ns_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

t0=$(ns__now_us)
ns_probe || skip "$NS_ERROR"
pass "probe: systemd-nspawn can run containers here ($(ns_fmt_ms "$(ns__ms_since "$t0")"))"

t0=$(ns__now_us)
ns_prepare_tree || die "cached tree: $NS_ERROR"
if [ "$NS_BUILD_MS" -gt 0 ]; then
	pass "cached tree built: $NS_CACHE ($(ns_fmt_ms "$NS_BUILD_MS"), $(du -sh "$NS_CACHE" | cut -f1))"
else
	pass "cached tree reused: $NS_CACHE ($(ns_fmt_ms "$(ns__ms_since "$t0")"))"
fi

name="kanotify-smoke-$$"
t0=$(ns__now_us)
ns_create "$name" || die "create: $NS_ERROR"
pass "container root ready ($NS_MODE) in $(ns_fmt_ms "$(ns__ms_since "$t0")")"
run_dir=$NS_RUN
ns_start || die "boot: $NS_ERROR"
nspawn_pid=$NS_PID leader=$NS_LEADER
cgroups=("${NS_CGROUPS[@]}")
state=$(ns_busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager SystemState)
pass "booted in $(ns_fmt_ms "$NS_BOOT_MS"): leader pid $leader, SystemState $state, bus $NS_BUS_ADDRESS"

# The bus really is the container's: its systemd is PID 1 of its own namespace
# and reports the nspawn virtualization.
virt=$(ns_busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager Virtualization)
if [ "$virt" = 's "systemd-nspawn"' ]; then
	pass "Virtualization is systemd-nspawn"
else
	fail "Virtualization: expected systemd-nspawn, got $virt"
fi

ns_install_unit "$UNIT" - <<'EOF' || die "install $UNIT: $NS_ERROR"
[Unit]
Description=kanotify harness smoke test

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
EOF
pass "installed $UNIT, daemon reloaded, LoadState loaded"

if out=$(ns_busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager StartUnit ss "$UNIT" replace 2>&1); then
	pass "StartUnit $UNIT: $out"
else
	die "StartUnit $UNIT: $out"
fi
# The unit's object, as GetUnit names it now that it is loaded.
if out=$(ns_busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager GetUnit s "$UNIT" 2>&1); then
	unit_path=${out#o \"}
	unit_path=${unit_path%\"}
	pass "GetUnit $UNIT: $unit_path"
else
	die "GetUnit $UNIT: $out"
fi
unit_active() {
	local t0 v
	t0=$(ns__now_us)
	while :; do
		v=$(ns_busctl get-property org.freedesktop.systemd1 "$unit_path" \
			org.freedesktop.systemd1.Unit ActiveState 2>&1)
		[ "$v" = "s \"$1\"" ] && return 0
		if [ "$(ns__ms_since "$t0")" -ge $STATE_TIMEOUT ]; then
			echo "$v"
			return 1
		fi
		sleep 0.05
	done
}
if v=$(unit_active active); then
	pass "$UNIT ActiveState=active"
else
	fail "$UNIT ActiveState: expected active, got $v"
fi
result=$(ns_busctl get-property org.freedesktop.systemd1 "$unit_path" \
	org.freedesktop.systemd1.Service Result 2>&1)
if [ "$result" = 's "success"' ]; then
	pass "$UNIT Result=success"
else
	fail "$UNIT Result: $result"
fi

if out=$(ns_busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager StopUnit ss "$UNIT" replace 2>&1); then
	pass "StopUnit $UNIT: $out"
else
	fail "StopUnit $UNIT: $out"
fi
if v=$(unit_active inactive); then
	pass "$UNIT ActiveState=inactive"
else
	fail "$UNIT ActiveState: expected inactive, got $v"
fi

ns_poweroff || fail "power-off: $NS_ERROR"
[ -n "$NS_POWEROFF_MS" ] && pass "powered off in $(ns_fmt_ms "$NS_POWEROFF_MS")"

# Nothing of the container is left.
left=""
ns__alive "$nspawn_pid" && left+=" systemd-nspawn($nspawn_pid)"
ns__alive "$leader" && left+=" container-init($leader)"
for d in /proc/[0-9]*; do
	{ tr '\0' '\n' <"$d/cmdline"; } 2>/dev/null | grep -qx -- "$name" && left+=" pid ${d#/proc/}"
done
[ -e "$run_dir" ] && left+=" $run_dir"
for cg in "${cgroups[@]}"; do [ -e "$cg" ] && left+=" $cg"; done
grep -qs " $run_dir" /proc/self/mountinfo && left+=" mount-under-$run_dir"
[ -e "/run/systemd/nspawn/propagate/$name" ] && left+=" /run/systemd/nspawn/propagate/$name"
if [ -z "$left" ]; then
	pass "nothing left: no nspawn process, per-run directory, mount or cgroup"
else
	fail "left behind:$left"
fi

if [ $failures -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all systemd smoke checks passed"
