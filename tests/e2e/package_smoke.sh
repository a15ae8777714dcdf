#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Installed-package smoke test: installs the built Debian packages, wires
# Debian's keepalived to the installed /usr/sbin/kanotify with the shipped
# example (packaging/examples/keepalived-notify.conf as installed under
# /usr/share/doc/kanotify/examples), runs one failover in two network
# namespaces, checks the recorded state and the StateChanged signals on a
# system bus that reads the installed policy, then purges the packages and
# checks that nothing they or kanotify created is left.
#
#   tests/e2e/package_smoke.sh DEBDIR      (DEBDIR: scripts/build-deb.sh's output)
#
# Needs root, dpkg, keepalived, iproute2, dbus-daemon and dbus-monitor, and
# a machine where kanotify is not installed already; otherwise prints
# "skipped: <reason>" and exits 77. When no system bus runs (no systemd as
# PID 1), the test starts `dbus-daemon --system` itself, at the standard
# socket path, and stops it at the end.
set -uo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 DEBDIR" >&2
	exit 2
}
debdir=$(cd "$1" && pwd) || exit 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/netns.sh
source "$here/../../scripts/lib/netns.sh"

BIN=/usr/sbin/kanotify
STATE_DIR=/var/lib/kanotify
EXAMPLE=/usr/share/doc/kanotify/examples/keepalived-notify.conf
BUS_SOCKET=/run/dbus/system_bus_socket
START_TIMEOUT=10000   # ms: node a MASTER after start-up
FAILOVER_TIMEOUT=8000 # ms: node a BACKUP after node b (higher priority) starts
RECORD_TIMEOUT=3000   # ms: a transition keepalived has sent is recorded
SIGNAL_TIMEOUT=3000   # ms: a signal reaches the listener

skip() {
	echo "skipped: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (it installs packages, creates network namespaces, runs keepalived)"
for tool in dpkg keepalived ip dbus-daemon dbus-monitor dbus-send setpriv; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (scripts/deps.sh installs it)"
done
debs=("$debdir"/*.deb)
[ -e "${debs[0]}" ] || skip "no .deb in $debdir (scripts/build-deb.sh builds them)"
packages=()
for deb in "${debs[@]}"; do
	packages+=("$(dpkg-deb -f "$deb" Package)")
done
for p in "${packages[@]}"; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
		skip "package $p is already on this machine (the test installs and purges it)"
	fi
done
[ ! -e "$BIN" ] || skip "$BIN exists and belongs to no package of this build"
kn_probe_netns || skip "cannot create a network namespace: $KN_ERROR"

failures=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $1"
	[ $# -lt 2 ] || echo "  expected: $2"
	[ $# -lt 3 ] || echo "  found:    $3"
	failures=$((failures + 1))
}
die() {
	fail "$@"
	[ -z "$KN_RUN" ] || kn_dump_logs
	[ -z "${monitor_log:-}" ] || { echo "----- D-Bus listener -----"; cat "$monitor_log"; }
	exit 1
}

installed=0 bus_pid="" monitor_pid=""
# Runs before kn_cleanup's own work: the listener and our bus go, and the
# packages are purged even when the test failed half-way.
smoke_cleanup() {
	local rc=$?
	[ -z "$monitor_pid" ] || kill "$monitor_pid" 2>/dev/null
	# The bus goes first: kn_cleanup waits for every child of this shell.
	if [ -n "$bus_pid" ]; then
		kill "$bus_pid" 2>/dev/null
		kn_wait_exit "$bus_pid" 2000 || kill -KILL "$bus_pid" 2>/dev/null
		rm -f "$BUS_SOCKET"
	fi
	kn_cleanup
	if ((installed)); then
		dpkg --purge "${packages[@]}" >/dev/null 2>&1
	fi
	exit "$rc"
}

kn_init || die "setting up the run directory: $KN_ERROR"
trap smoke_cleanup EXIT

# What exists before: whatever the packages or kanotify create must be gone
# after the purge, and nothing that was here may be removed by it.
existed() { grep -qxF -- "$1" "$KN_RUN/before.list"; }
find /etc /usr /var/lib /var/log /run -xdev -name '*kanotify*' 2>/dev/null | sort >"$KN_RUN/before.kanotify"

# ---- install
for deb in "${debs[@]}"; do
	dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^$' >>"$KN_RUN/payload.list"
done
sort -u -o "$KN_RUN/payload.list" "$KN_RUN/payload.list"
printf '%s\n' "$STATE_DIR" /etc/kanotify >>"$KN_RUN/payload.list"
while read -r path; do
	[ -e "$path" ] || [ -L "$path" ] && printf '%s\n' "$path"
done <"$KN_RUN/payload.list" >"$KN_RUN/before.list"

installed=1
if ! out=$(dpkg -i "${debs[@]}" 2>&1); then
	die "dpkg -i ${debs[*]##*/}" "installed" "$out"
fi
pass "installed ${packages[*]}"

# ---- what was installed, and how
read -r owner mode < <(stat -c '%U:%G %a' "$BIN")
[ "$owner $mode" = "root:root 755" ] || fail "$BIN owner and mode" "root:root 755" "$owner $mode"
kn_path_secure "$BIN" && pass "$BIN is root:root 0755 and every directory above it is root-only (enable_script_security accepts it)" ||
	fail "every component of $BIN root-owned, not group/world writable" "secure" "$(namei -l "$BIN")"
read -r owner mode < <(stat -c '%U:%G %a' /etc/kanotify/kanotify.toml)
[ "$owner $mode" = "root:root 644" ] || fail "/etc/kanotify/kanotify.toml owner and mode" "root:root 644" "$owner $mode"
dpkg-query -W -f='${Conffiles}\n' kanotify | grep -q '^ /etc/kanotify/kanotify.toml ' &&
	pass "/etc/kanotify/kanotify.toml is a conffile, root:root 0644" ||
	fail "/etc/kanotify/kanotify.toml listed as a conffile" "listed" "$(dpkg-query -W -f='${Conffiles}' kanotify)"
for f in /usr/share/dbus-1/system.d/org.kanotify.conf /usr/share/dbus-1/interfaces/org.kanotify.Instance1.xml \
	/usr/share/man/man8/kanotify.8.gz /usr/share/man/man5/kanotify.toml.5.gz "$EXAMPLE"; do
	[ -f "$f" ] || fail "installed file $f" "present" "absent"
done
version=$(dpkg-query -W -f='${Version}' kanotify)
out=$("$BIN" --version 2>&1)
[ "$out" = "kanotify ${version%%-*}" ] && pass "$BIN --version: $out" ||
	fail "$BIN --version" "kanotify ${version%%-*}" "$out"
# The installed configuration is the one every invocation below reads.
out=$("$BIN" status 2>&1) || die "$BIN status with the installed /etc/kanotify/kanotify.toml" "exit 0" "$out"
pass "the installed kanotify reads the installed /etc/kanotify/kanotify.toml"
getent group kanotify >/dev/null && pass "group kanotify (named by the installed D-Bus policy) exists" ||
	fail "group kanotify created by the package (sysusers.d)" "present" "absent"

# ---- a system bus that reads the installed policy
if [ -S "$BUS_SOCKET" ] && dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
	org.freedesktop.DBus.GetId >/dev/null 2>&1; then
	# A running system bus (systemd machines): have it read the new policy.
	dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig >/dev/null ||
		die "ReloadConfig on the running system bus" "done" "refused"
	echo "note: using the system bus already running at $BUS_SOCKET (configuration reloaded)"
else
	[ ! -e "$BUS_SOCKET" ] || rm -f "$BUS_SOCKET" # a stale socket nobody answers on
	mkdir -p /run/dbus
	dbus-daemon --system --nofork --nopidfile >"$KN_RUN/bus.log" 2>&1 &
	bus_pid=$!
	waited=0
	until dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >/dev/null 2>&1; do
		kn_alive "$bus_pid" || die "dbus-daemon --system started" "running" "$(cat "$KN_RUN/bus.log")"
		((waited < 5000)) || die "dbus-daemon --system answers within 5 s" "answers" "silent"
		sleep 0.05
		waited=$((waited + 50))
	done
	pass "started dbus-daemon --system (pid $bus_pid) at $BUS_SOCKET"
fi

# The listener is an unprivileged user: the installed policy lets everyone
# receive StateChanged.
monitor_log="$KN_RUN/monitor.log"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	dbus-monitor --system "type='signal',interface='org.kanotify.Instance1'" >"$monitor_log" 2>&1 &
monitor_pid=$!
# dbus-monitor prints the bus's NameAcquired once its match is in place.
waited=0
until grep -q NameAcquired "$monitor_log"; do
	kn_alive "$monitor_pid" || die "dbus-monitor as nobody" "running" "$(cat "$monitor_log")"
	((waited < 5000)) || die "dbus-monitor connected within 5 s" "NameAcquired" "$(cat "$monitor_log")"
	sleep 0.05
	waited=$((waited + 50))
done

# Counts the StateChanged signals for NAME with STATE seen so far.
signals() {
	# A signal block: the header line, then one argument per line.
	awk -v name="$1" -v state="$2" '
		/^signal / { inside = ($0 ~ /member=StateChanged/); arg = 0; next }
		inside && /^   string / { arg++; if (arg == 1) n = $2; if (arg == 2 && n == "\"" name "\"" && $2 == "\"" state "\"") count++ }
		END { print count + 0 }' "$monitor_log"
}
wait_signal() {
	local waited=0
	until [ "$(signals "$1" "$2")" -ge 1 ]; do
		((waited < SIGNAL_TIMEOUT)) || return 1
		sleep 0.05
		waited=$((waited + 50))
	done
}

# Nobody but root (and group kanotify) may emit on org.kanotify.Instance1:
# without the installed policy the system bus's defaults would let this
# signal through (and the bus drops a refused signal without logging it).
setpriv --reuid=65534 --regid=65534 --clear-groups dbus-send --system --type=signal \
	/org/kanotify/instance/FORGED org.kanotify.Instance1.StateChanged \
	string:FORGED string:MASTER string:BACKUP uint32:1 uint64:1 uint64:1 \
	dict:string:string:namespace,x >/dev/null 2>&1
# A root signal sent after it is the marker that the forged one had its
# chance to arrive.
dbus-send --system --type=signal /org/kanotify/instance/MARKER org.kanotify.Instance1.StateChanged \
	string:MARKER string:MASTER string:BACKUP uint32:1 uint64:1 uint64:1 dict:string:string:namespace,x ||
	die "root emits a StateChanged marker" "sent" "refused"
wait_signal MARKER MASTER || die "root's marker signal reaches the unprivileged listener" "received" "$(cat "$monitor_log")"
[ "$(signals FORGED MASTER)" = 0 ] && pass "installed policy: an unprivileged user cannot emit StateChanged, everyone receives it" ||
	fail "the installed policy refuses StateChanged from an unprivileged user" "refused" "delivered"
# A member of group kanotify may emit them: the policy names an existing group.
setpriv --reuid=65534 --regid=65534 --groups kanotify dbus-send --system --type=signal \
	/org/kanotify/instance/MEMBER org.kanotify.Instance1.StateChanged \
	string:MEMBER string:MASTER string:BACKUP uint32:1 uint64:1 uint64:1 dict:string:string:namespace,x ||
	die "a member of group kanotify emits StateChanged" "sent" "refused"
wait_signal MEMBER MASTER && pass "installed policy: a member of group kanotify may emit StateChanged" ||
	fail "the installed policy lets group kanotify emit StateChanged" "received" "$(cat "$monitor_log")"

# ---- keepalived from the shipped example, one failover
kn_prepare_binary "$BIN" || die "$KN_ERROR"
[ "$KN_BIN" = "$BIN" ] || die "keepalived runs the installed binary itself" "$BIN" "$KN_BIN (a copy)"
kn_setup_netns || die "creating the namespaces: $KN_ERROR"
# Node a: the example as shipped, its interface renamed. Node b: the same
# example with a higher priority and without kanotify, to take over.
grep -q 'notify "/usr/sbin/kanotify ' "$EXAMPLE" || die "the installed example wires kanotify" "a notify line" "$(cat "$EXAMPLE")"
sed "s/eth0/${KN_IF[a]}/g" "$EXAMPLE" >"$KN_RUN/a/keepalived.conf"
sed -e "s/eth0/${KN_IF[b]}/g" -e 's/priority 100/priority 200/' -e '/notify /d' "$EXAMPLE" >"$KN_RUN/b/keepalived.conf"
echo "node a runs: $(grep 'notify ' "$KN_RUN/a/keepalived.conf" | sed 's/^ *//')"

kn_start_keepalived a || die "starting keepalived on node a: $KN_ERROR"
kn_wait_content "$STATE_DIR/VI_1.state" MASTER "$START_TIMEOUT" ||
	die "$STATE_DIR/VI_1.state after node a started alone" "MASTER" "$KN_SEEN"
pass "node a MASTER recorded in $STATE_DIR/VI_1.state"
wait_signal VI_1 MASTER && pass "StateChanged VI_1 MASTER seen on the system bus" ||
	fail "StateChanged VI_1 MASTER on the system bus" "received" "$(cat "$monitor_log")"

kn_start_keepalived b || die "starting keepalived on node b: $KN_ERROR"
kn_wait_content "$STATE_DIR/VI_1.state" BACKUP "$FAILOVER_TIMEOUT" ||
	die "$STATE_DIR/VI_1.state after node b (priority 200) took over" "BACKUP" "$KN_SEEN"
kn_wait_vip b 1 2000 || die "VIP on node b after the failover" "present" "absent"
pass "failover: node b took the VIP, node a BACKUP recorded"
wait_signal VI_1 BACKUP && pass "StateChanged VI_1 BACKUP seen on the system bus" ||
	fail "StateChanged VI_1 BACKUP on the system bus" "received" "$(cat "$monitor_log")"

kn_stop_keepalived a || die "stopping keepalived of node a: $KN_ERROR"
kn_wait_content "$STATE_DIR/VI_1.state" STOP "$RECORD_TIMEOUT" ||
	die "$STATE_DIR/VI_1.state after node a stopped" "STOP" "$KN_SEEN"
history=$("$BIN" history --json -n 0 2>&1) || die "$BIN history --json" "exit 0" "$history"
states=$(grep '"type":"transition"' <<<"$history" | grep -o '"state":"[A-Z_]*"' | cut -d'"' -f4 | tr '\n' ' ')
[ "$states" = "BACKUP MASTER BACKUP STOP " ] && pass "journal $STATE_DIR/journal.jsonl: VI_1 went BACKUP -> MASTER -> BACKUP -> STOP" ||
	fail "journalled transitions of VI_1" "BACKUP MASTER BACKUP STOP" "$states"
grep -q 'SECURITY VIOLATION\|Unsafe permissions\|disabling' "$(kn_ka_log a)" &&
	fail "keepalived accepts the installed kanotify under enable_script_security" "no complaint" "$(grep -E 'SECURITY|Unsafe|disabling' "$(kn_ka_log a)")"
kn_stop_keepalived b || fail "stopping keepalived of node b: $KN_ERROR"

# ---- purge
kill "$monitor_pid" 2>/dev/null
monitor_pid=""
if ! out=$(dpkg --purge "${packages[@]}" 2>&1); then
	die "dpkg --purge ${packages[*]}" "purged" "$out"
fi
installed=0
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case $status in "" | *not-installed) ;; *) fail "package $p after purge" "not installed" "$status" ;; esac
done
left=""
while read -r path; do
	if { [ -e "$path" ] || [ -L "$path" ]; } && ! existed "$path"; then
		left+="$path "
	fi
done <"$KN_RUN/payload.list"
find /etc /usr /var/lib /var/log /run -xdev -name '*kanotify*' 2>/dev/null | sort >"$KN_RUN/after.kanotify"
new=$(comm -13 "$KN_RUN/before.kanotify" "$KN_RUN/after.kanotify" | grep -v "^$KN_RUN" | grep -v "^/run/netns/")
left+=$new
[ -z "$left" ] && pass "purged: no file, directory or state of the packages is left" ||
	fail "nothing left after dpkg --purge" "nothing" "$left"

if ((failures)); then
	kn_dump_logs
	echo "----- D-Bus listener -----"
	cat "$monitor_log"
	echo "FAIL: $failures check(s) failed"
	exit 1
fi
echo "PASS"
