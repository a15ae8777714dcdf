#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end: kanotify drives systemd units with the VRRP state, against a
# real systemd booted with systemd-nspawn on a cached minimal Debian tree
# (tests/e2e/lib/nspawn.sh), reached over the container's system bus socket.
#   - MASTER starts the configured service and the instance's
#     kanotify-master@.target (the shipped template); a service with
#     BindsTo= on the target, enabled with WantedBy= on it, starts with it.
#   - BACKUP stops them all.
#   - A unit that fails to start is journalled "failed" with systemd's job
#     result; a missing unit "missing"; a job slower than the timeout
#     "timed-out".
#   - The FIFO front-end drives the same units, in line order.
#   - The container is powered off and nothing of it is left.
#
#   tests/e2e/systemd_units.sh /path/to/kanotify /path/to/packaging/systemd
#
# Needs root and systemd-nspawn; the first run builds the cached tree with
# debootstrap from the machine's apt sources (about a minute). Where nspawn
# cannot run it prints "skipped: <reason>" and exits 77.
set -uo pipefail

[ $# -eq 2 ] || {
	echo "usage: $0 /path/to/kanotify /path/to/packaging/systemd" >&2
	exit 2
}
bin=$1
units_dir=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/nspawn.sh
source "$here/lib/nspawn.sh"

STATE_TIMEOUT=10000 # ms for a unit to reach a state
failures=0
work=""
fifo_pid=""
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
die() {
	echo "FAIL: $*"
	[ -n "$work" ] && [ -f "$work/state/journal.jsonl" ] && sed 's/^/  journal: /' "$work/state/journal.jsonl" | tail -n 20
	ns_console_tail 20 | sed 's/^/  console: /'
	exit 1
}
skip() {
	echo "skipped: $*"
	exit 77
}
cleanup() {
	[ -n "$fifo_pid" ] && kill "$fifo_pid" 2>/dev/null
	ns_cleanup
	[ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

[ -x "$bin" ] || die "no kanotify binary at $bin"
ns_probe || skip "$NS_ERROR"
ns_prepare_tree || die "cached tree: $NS_ERROR"
ns_create "kanotify-units-$$" || die "create: $NS_ERROR"

# Units, installed before the boot so systemd reads them at start-up.
etc=$NS_ROOT/etc/systemd/system
mkdir -p "$etc/kanotify-master@VI_1.target.wants"
install -m 0644 "$units_dir/kanotify-master@.target" "$etc/kanotify-master@.target"
cat >"$etc/app.service" <<'EOF'
[Unit]
Description=a service kanotify starts on MASTER
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
EOF
cat >"$etc/follower.service" <<'EOF'
[Unit]
Description=a service that follows VI_1's master target
BindsTo=kanotify-master@VI_1.target
After=kanotify-master@VI_1.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=kanotify-master@VI_1.target
EOF
# What `systemctl enable follower.service` does with that [Install] section.
ln -s ../follower.service "$etc/kanotify-master@VI_1.target.wants/follower.service"
cat >"$etc/broken.service" <<'EOF'
[Unit]
Description=a service that fails to start
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/false
EOF
cat >"$etc/slow.service" <<'EOF'
[Unit]
Description=a service slower to start than kanotify waits for
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sleep 20
EOF
ns_start || die "boot: $NS_ERROR"
pass "container booted in $(ns_fmt_ms "$NS_BOOT_MS"), bus $NS_BUS_ADDRESS"

work=$(mktemp -d /tmp/kanotify-units.XXXXXX)
mkdir -p "$work/state"
cat >"$work/kanotify.toml" <<EOF
state_dir = "$work/state"
[dbus]
signal = false
[systemd]
bus = "$NS_BUS_ADDRESS"
timeout_ms = 10000
[instance.VI_1]
units = ["app.service"]
target = true
[instance.VI_2]
units = ["broken.service"]
[instance.VI_3]
units = ["no-such-unit.service"]
[instance.VI_4]
units = ["slow.service"]
[instance.VI_4.systemd]
timeout_ms = 1000
EOF

active() { ns_unit_property "$1" ActiveState 2>/dev/null; }
expect_state() { # unit state
	if ns_wait_unit_property "$1" ActiveState "$2" "$STATE_TIMEOUT"; then
		pass "$1 is $2"
	else
		fail "$1: $NS_ERROR"
	fi
}
# The unit journal line of UNIT with the given action, newest first.
unit_line() { grep "\"type\":\"unit\"" "$work/state/journal.jsonl" | grep "\"unit\":\"$1\"" | grep "\"action\":\"$2\"" | tail -n 1; }
expect_result() { # unit action result
	local line
	line=$(unit_line "$1" "$2")
	if [[ "$line" == *"\"result\":\"$3\""* ]]; then
		pass "journal: $2 $1 -> $3"
	else
		fail "journal: $2 $1: expected result $3, found: ${line:-no line}"
	fi
}
notify() { "$bin" --config "$work/kanotify.toml" --log-target stderr "$@" 2>>"$work/stderr"; }

# MASTER: the service, the target and what is bound to the target start.
notify INSTANCE VI_1 MASTER 100 || fail "argv MASTER exited $?"
expect_state app.service active
expect_state 'kanotify-master@VI_1.target' active
expect_state follower.service active
expect_result app.service start done
expect_result 'kanotify-master@VI_1.target' start done

# BACKUP: all of them stop, the target's followers with it.
notify INSTANCE VI_1 BACKUP 100 || fail "argv BACKUP exited $?"
expect_state app.service inactive
expect_state 'kanotify-master@VI_1.target' inactive
expect_state follower.service inactive
expect_result app.service stop done
expect_result 'kanotify-master@VI_1.target' stop done
# Stopped in the reverse order of starting: the target first.
order=$(grep '"action":"stop"' "$work/state/journal.jsonl" | grep -o '"unit":"[^"]*"' | tr '\n' ' ')
if [ "$order" = '"unit":"kanotify-master@VI_1.target" "unit":"app.service" ' ]; then
	pass "stopped in reverse order: $order"
else
	fail "stop order: $order"
fi

# A unit that fails: systemd's job result, an error in the log, state kept.
notify INSTANCE VI_2 MASTER 100
rc=$?
[ $rc = 0 ] && pass "a failed unit does not change the exit status (the state is recorded)" || fail "VI_2 exited $rc"
expect_result broken.service start failed
[ "$(cat "$work/state/VI_2.state")" = MASTER ] && pass "VI_2 state recorded MASTER" || fail "VI_2 state $(cat "$work/state/VI_2.state")"
grep -q 'VI_2: systemd: start broken.service: failed' "$work/stderr" && pass "failed unit logged as an error" ||
	fail "no error logged for broken.service: $(tail -n 3 "$work/stderr")"

# A unit that does not exist.
notify INSTANCE VI_3 MASTER 100
expect_result no-such-unit.service start missing

# A job slower than the instance's timeout.
t0=${EPOCHREALTIME/./}
notify INSTANCE VI_4 MASTER 100
t1=${EPOCHREALTIME/./}
expect_result slow.service start timed-out
elapsed=$(((t1 - t0) / 1000))
[ "$elapsed" -lt 5000 ] && pass "the slow job cost $elapsed ms (timeout 1000 ms)" || fail "the slow job took $elapsed ms"

# The FIFO front-end: three lines in one burst, the last state wins.
mkfifo "$work/fifo"
"$bin" fifo --config "$work/kanotify.toml" --log-target stderr "$work/fifo" 2>>"$work/stderr" &
fifo_pid=$!
exec 3<>"$work/fifo"
printf 'INSTANCE "VI_1" MASTER 100\nINSTANCE "VI_1" BACKUP 100\nINSTANCE "VI_1" MASTER 100\n' >&3
expect_state app.service active
expect_state follower.service active
printf 'INSTANCE "VI_1" FAULT 0\n' >&3
expect_state app.service inactive
expect_state follower.service inactive
exec 3>&-
kill -TERM "$fifo_pid"
wait "$fifo_pid"
fifo_pid=""
[ "$(cat "$work/state/VI_1.state")" = FAULT ] && pass "FIFO: VI_1 recorded FAULT" || fail "FIFO: VI_1 state $(cat "$work/state/VI_1.state")"

# Metrics-style counters and the status tell the same story.
done_jobs=$(grep '"type":"unit"' "$work/state/journal.jsonl" | grep -c '"result":"done"')
echo "unit jobs done: $done_jobs; all unit lines:"
grep '"type":"unit"' "$work/state/journal.jsonl" | sed 's/^/  /'

leader=$NS_LEADER run_dir=$NS_RUN
ns_poweroff || fail "power-off: $NS_ERROR"
left=""
ns__alive "$leader" && left+=" container-init($leader)"
[ -e "$run_dir" ] && left+=" $run_dir"
[ -z "$left" ] && pass "container powered off, nothing left" || fail "left behind:$left"

if [ $failures -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all systemd unit checks passed"
