#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# argv mode under keepalived's signals: a notify process is SIGTERMed when
# keepalived's VRRP process exits (PR_SET_PDEATHSIG, which keepalived sets
# on every script), right as the STOP transitions are being recorded.
#   1. SIGTERM while the transition is being handled (a hook still runs):
#      the transition, its journal line and the hook's finish first, then
#      the signal acts (exit by SIGTERM);
#   2. a death signal set by the parent, and the parent gone mid-transition:
#      kanotify cleared it and finishes;
#   3. the SIGKILL keepalived's shutdown sends to the process group of every
#      notify still running 1.1 s after the STOP notifies: a STOP goes on
#      outside that group and finishes (hook and journal line); a MASTER
#      killed the same way does not outlive it.
#
#   tests/e2e/argv_signals.sh /path/to/kanotify
set -uo pipefail
[ $# -eq 1 ] || {
	echo "usage: $0 /path/to/kanotify" >&2
	exit 2
}
bin=$1
command -v setpriv >/dev/null 2>&1 || {
	echo "skipped: setpriv (util-linux) is not installed"
	exit 77
}
W=$(mktemp -d /tmp/kanotify-signals.XXXXXX)
trap 'rm -rf "$W"' EXIT
failures=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
cat >"$W/kanotify.toml" <<CONF
state_dir = "$W/state"
[dbus]
signal = false
[hooks]
any = [["/bin/sleep", "0.6"]]
CONF
journal_has() { grep -c "$1" "$W/state/journal.jsonl" 2>/dev/null || echo 0; }

# 1. SIGTERM mid-transition.
"$bin" --config "$W/kanotify.toml" --log-target stderr INSTANCE VI_1 MASTER 100 2>"$W/err1" &
pid=$!
sleep 0.3
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$(cat "$W/state/VI_1.state" 2>/dev/null)" = MASTER ] && pass "SIGTERM mid-transition: state recorded" ||
	fail "SIGTERM mid-transition: state $(cat "$W/state/VI_1.state" 2>/dev/null)"
[ "$(journal_has '"type":"transition".*"name":"VI_1"')" = 1 ] && pass "its journal line is there" || fail "no journal line"
[ "$(journal_has '"type":"hook".*"name":"VI_1".*"exit_status":0')" = 1 ] && pass "the hook ran to its end" ||
	fail "the hook did not finish: $(grep hook "$W/state/journal.jsonl")"
[ $rc = 143 ] && pass "then SIGTERM acted (exit status $rc)" || fail "exit status $rc, expected 143 (SIGTERM after the work)"

# 2. The parent dies with a death signal set, as keepalived's VRRP process does.
bash -c 'setpriv --pdeathsig TERM "$0" --config "$1" --log-target stderr INSTANCE VI_2 STOP 0 2>"$2" & sleep 0.3' \
	"$bin" "$W/kanotify.toml" "$W/err2"
deadline=$((${EPOCHREALTIME/./} / 1000 + 5000))
until [ "$(journal_has '"type":"hook".*"name":"VI_2"')" = 1 ] || [ $((${EPOCHREALTIME/./} / 1000)) -ge $deadline ]; do
	sleep 0.05
done
[ "$(cat "$W/state/VI_2.state" 2>/dev/null)" = STOP ] && pass "parent gone: STOP recorded" || fail "parent gone: no STOP"
[ "$(journal_has '"type":"hook".*"name":"VI_2".*"exit_status":0')" = 1 ] &&
	pass "parent gone: the death signal was cleared, the hook ran to its end" ||
	fail "parent gone: the STOP's hook did not finish (killed by the death signal?)"

# 3. keepalived's backstop: SIGKILL to the notify's process group.
killed_group() { # NAME STATE PRIO: run in a process group of its own, kill the group at 300 ms
	set -m
	"$bin" --config "$W/kanotify.toml" --log-target stderr INSTANCE "$1" "$2" "$3" 2>"$W/err-$1" &
	local pid=$!
	set +m
	sleep 0.3
	kill -KILL -- "-$pid"
	wait "$pid"
}
killed_group VI_3 STOP 0
rc=$?
[ $rc = 137 ] && pass "STOP, group killed: the process keepalived waits for is killed (exit status $rc)" ||
	fail "STOP, group killed: exit status $rc, expected 137"
deadline=$((${EPOCHREALTIME/./} / 1000 + 5000))
until [ "$(journal_has '"type":"hook".*"name":"VI_3"')" = 1 ] || [ $((${EPOCHREALTIME/./} / 1000)) -ge $deadline ]; do
	sleep 0.05
done
[ "$(cat "$W/state/VI_3.state" 2>/dev/null)" = STOP ] && pass "STOP, group killed: STOP recorded" ||
	fail "STOP, group killed: state $(cat "$W/state/VI_3.state" 2>/dev/null)"
[ "$(journal_has '"type":"hook".*"name":"VI_3".*"exit_status":0')" = 1 ] &&
	pass "STOP, group killed: it went on outside the group, its hook ran to its end" ||
	fail "STOP, group killed: the hook did not finish: $(grep VI_3 "$W/state/journal.jsonl")"
killed_group VI_4 MASTER 100
rc=$?
sleep 1
[ $rc = 137 ] && [ "$(cat "$W/state/VI_4.state" 2>/dev/null)" = MASTER ] &&
	pass "MASTER, group killed: recorded before the kill, killed with the group" ||
	fail "MASTER, group killed: exit status $rc, state $(cat "$W/state/VI_4.state" 2>/dev/null)"
! grep -q '"type":"hook".*"name":"VI_4"' "$W/state/journal.jsonl" &&
	pass "MASTER, group killed: nothing but a STOP outlives keepalived's kill" ||
	fail "MASTER, group killed: its hook finished outside the group"

[ $failures = 0 ] || {
	echo "$failures check(s) failed"
	exit 1
}
echo "all argv signal checks passed"
