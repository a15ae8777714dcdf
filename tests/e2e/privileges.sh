#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Least privilege, as root: a running `kanotify fifo` holds in its permitted
# and effective sets exactly the capabilities its configuration needs, its
# bounding set untouched, and a hook it runs as root gets root's
# capabilities back (it is the user's own program).
#
#   tests/e2e/privileges.sh /path/to/kanotify
#
# Needs root with the capabilities checked here; else "skipped: ..." and 77.
set -uo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 /path/to/kanotify" >&2
	exit 2
}
bin=$1
skip() {
	echo "skipped: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root: capabilities are only reduced for root"
cap_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
bounding=$(cap_field self CapBnd)
# CAP_SYS_ADMIN 21, CAP_NET_RAW 13, CAP_DAC_OVERRIDE 1, CAP_SETUID 7,
# CAP_SETGID 6, CAP_KILL 5, CAP_SYS_PTRACE 19.
for bit in 1 5 6 7 13 19 21; do
	(((0x$bounding >> bit) & 1)) || skip "this root lacks capability $bit (CapBnd $bounding)"
done
id nobody >/dev/null 2>&1 || skip "no user nobody"

W=$(mktemp -d /tmp/kanotify-caps.XXXXXX)
reader=""
failures=0
cleanup() {
	[ -n "$reader" ] && kill "$reader" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Starts a reader on config text $2 (the state directory and signal = false
# are added), waits until its permitted set is no longer the full one,
# checks it is $3 (hex, 16 digits), the effective set the same, the
# bounding set unchanged.
check() { # label config expected
	local label=$1 dir=$W/$1 deadline prm eff bnd
	mkdir -p "$dir"
	printf 'state_dir = "%s/state"\n[dbus]\nsignal = false\n%s\n' "$dir" "$2" >"$dir/kanotify.toml"
	mkfifo "$dir/fifo"
	"$bin" fifo --config "$dir/kanotify.toml" --log-target stderr --debug "$dir/fifo" 2>"$dir/stderr" &
	reader=$!
	deadline=$(($(now_ms) + 5000))
	while prm=$(cap_field "$reader" CapPrm 2>/dev/null) && [ "$prm" = "$bounding" ] && [ "$(now_ms)" -lt "$deadline" ]; do
		sleep 0.02
	done
	eff=$(cap_field "$reader" CapEff)
	bnd=$(cap_field "$reader" CapBnd)
	if [ "$prm" = "$3" ] && [ "$eff" = "$3" ] && [ "$bnd" = "$bounding" ]; then
		pass "$label: permitted = effective = $3, bounding set unchanged"
	else
		fail "$label: CapPrm $prm CapEff $eff CapBnd $bnd, expected $3 and bounding $bounding; $(tail -n 3 "$dir/stderr")"
	fi
	if [ -n "${4:-}" ]; then
		# A hook run as root: the FIFO line triggers it.
		printf 'INSTANCE "VI_1" MASTER 100\n' >"$dir/fifo"
		deadline=$(($(now_ms) + 5000))
		until [ -s "$dir/hook-caps" ] || [ "$(now_ms)" -ge "$deadline" ]; do sleep 0.02; done
		local hook
		hook=$(cat "$dir/hook-caps" 2>/dev/null)
		[ "$hook" = "$bounding" ] && pass "$label: a hook run as root has root's capabilities ($hook)" ||
			fail "$label: the hook's CapEff is '${hook:-none}', expected $bounding"
	fi
	kill -TERM "$reader"
	wait "$reader" 2>/dev/null
	reader=""
}

check nothing "" 0000000000000000
check socket "[socket]
path = \"$W/agent.sock\"" 0000000000000002
check metrics "[metrics]
textfile = \"$W/metrics.prom\"" 0000000000000002
check namespace "[instance.VI_1]
namespace = \"/proc/1/ns/net\"" 0000000000200000
check garp "[garp]
count = 1" 0000000000002000
check hook-user "[hooks]
user = \"nobody\"
any = [[\"/bin/true\"]]" 00000000000000e0
check container-bus "[systemd]
bus = \"unix:path=/proc/1/root/run/dbus/system_bus_socket\"
[instance.VI_1]
target = true" 0000000000080000
check hook-root "[hooks]
any = [[\"/bin/sh\", \"-c\", \"sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status > $W/hook-root/hook-caps\"]]" 0000000000000000 hook

[ $failures = 0 ] || {
	echo "$failures check(s) failed"
	exit 1
}
echo "all privilege checks passed"
