#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The wall clock stepped back by an hour between transitions: ordering,
# staleness, coalescing and timeouts must not depend on CLOCK_REALTIME.
# libfaketime steps the clock of kanotify's processes only (never the
# machine's), with CLOCK_MONOTONIC left alone, as a real step (NTP, an
# operator's `date -s`) leaves it:
#   1. a FIFO reader records VI_1 MASTER and VI_2 MASTER;
#   2. its clock steps back an hour while it runs: VI_1 BACKUP, then
#      VI_1 MASTER, are applied in line order, none stale;
#   3. a new FIFO reader started an hour in the past (a keepalived reload
#      after the step) applies VI_1 BACKUP: its sequences continue above the
#      recorded ones;
#   4. argv mode an hour in the past applies VI_2 BACKUP;
#   5. `kanotify wait --timeout 500ms` times out after about 500 ms whatever
#      the wall clock says;
#   6. the journal is in the order things happened, with sequences strictly
#      increasing per instance; `kanotify status` shows the latest states.
#
#   tests/e2e/clock_step.sh /path/to/kanotify
#
# Needs libfaketime (Debian package faketime); skipped (exit 77) without it.
set -uo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 /path/to/kanotify" >&2
	exit 2
}
bin=$1
fake=""
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
	[ -f "$f" ] && fake=$f && break
done
[ -n "$fake" ] || {
	echo "skipped: libfaketime is not installed (Debian package faketime; scripts/deps.sh installs it)"
	exit 77
}

W=$(mktemp -d /tmp/kanotify-clock.XXXXXX)
reader=""
failures=0
cleanup() {
	[ -n "$reader" ] && kill "$reader" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
die() {
	fail "$*"
	sed 's/^/  journal: /' "$W/state/journal.jsonl" 2>/dev/null | tail -n 20
	sed 's/^/  stderr: /' "$W/stderr" 2>/dev/null | tail -n 10
	exit 1
}

mkdir -p "$W/state"
cat >"$W/kanotify.toml" <<EOF
state_dir = "$W/state"
[dbus]
signal = false
EOF
echo "+0" >"$W/clock"
# Every kanotify below runs with the wall clock of $W/clock, re-read on
# every call, and the real CLOCK_MONOTONIC.
# (env execs the program, so `faked ... &` leaves its pid in $!.)
# An ASan build accepts a preloaded library only when told to.
faked=(env LD_PRELOAD="$fake" FAKETIME_TIMESTAMP_FILE="$W/clock" FAKETIME_NO_CACHE=1
	FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_DONT_RESET=1
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
wait_state() { # name state
	local deadline=$(($(now_ms) + 5000))
	while [ "$(cat "$W/state/$1.state" 2>/dev/null)" != "$2" ]; do
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.02
	done
}
# Transition lines of the journal: "name state outcome sequence time_usec".
transitions() {
	grep '"type":"transition"' "$W/state/journal.jsonl" |
		sed -E 's/.*"time_usec":([0-9]+).*"name":"([^"]*)".*"state":"([^"]*)".*"sequence":([0-9]+).*"outcome":"([^"]*)".*/\2 \3 \5 \4 \1/'
}

# The faked clock is really there: the process sees a time an hour back.
echo "-1h" >"$W/clock"
seen=$("${faked[@]}" date +%s)
echo "+0" >"$W/clock"
skew=$(($(date +%s) - seen))
[ "$skew" -ge 3590 ] && [ "$skew" -le 3610 ] || {
	echo "skipped: libfaketime does not shift this process's clock (skew ${skew}s)"
	exit 77
}

# 1 and 2: one reader, its clock stepped back an hour while it runs.
mkfifo "$W/fifo"
"${faked[@]}" "$bin" fifo --config "$W/kanotify.toml" --log-target stderr "$W/fifo" 2>>"$W/stderr" &
reader=$!
exec 3<>"$W/fifo"
printf 'INSTANCE "VI_1" MASTER 100\nINSTANCE "VI_2" MASTER 100\n' >&3
wait_state VI_1 MASTER && wait_state VI_2 MASTER || die "first reader: states not recorded"
pass "reader 1: VI_1 MASTER and VI_2 MASTER recorded"
echo "-1h" >"$W/clock"
sleep 0.1
printf 'INSTANCE "VI_1" BACKUP 100\n' >&3
wait_state VI_1 BACKUP || die "after the step back: VI_1 BACKUP not applied"
printf 'INSTANCE "VI_1" MASTER 100\n' >&3
wait_state VI_1 MASTER || die "after the step back: VI_1 MASTER not applied"
pass "reader 1, clock an hour back: VI_1 BACKUP then MASTER applied in line order"
exec 3>&-
kill -TERM "$reader"
wait "$reader" || fail "reader 1 exited $?"
reader=""

# 3: a new reader, started an hour in the past.
"${faked[@]}" "$bin" fifo --config "$W/kanotify.toml" --log-target stderr "$W/fifo" 2>>"$W/stderr" &
reader=$!
exec 3<>"$W/fifo"
printf 'INSTANCE "VI_1" BACKUP 100\n' >&3
wait_state VI_1 BACKUP || die "reader 2 (started an hour back): VI_1 BACKUP not applied (taken for stale?)"
pass "reader 2, started an hour back: VI_1 BACKUP applied, not stale"
exec 3>&-
kill -TERM "$reader"
wait "$reader" || fail "reader 2 exited $?"
reader=""

# 4: argv, an hour in the past.
"${faked[@]}" "$bin" --config "$W/kanotify.toml" --log-target stderr INSTANCE VI_2 BACKUP 100 2>>"$W/stderr" ||
	fail "argv an hour back exited $?"
[ "$(cat "$W/state/VI_2.state")" = BACKUP ] && pass "argv, an hour back: VI_2 BACKUP applied" ||
	fail "argv an hour back: VI_2 is $(cat "$W/state/VI_2.state")"

# 5: timeouts run on CLOCK_MONOTONIC.
t0=$(now_ms)
"${faked[@]}" "$bin" wait --config "$W/kanotify.toml" --state master --timeout 500ms VI_2 2>>"$W/stderr"
rc=$?
elapsed=$(($(now_ms) - t0))
if [ $rc = 75 ] && [ $elapsed -ge 450 ] && [ $elapsed -lt 3000 ]; then
	pass "wait --timeout 500ms with the clock an hour back: exit 75 after $elapsed ms"
else
	fail "wait --timeout 500ms: exit $rc after $elapsed ms"
fi

# 6: the journal.
transitions >"$W/transitions"
sed 's/^/  /' "$W/transitions"
expected="VI_1 MASTER applied
VI_2 MASTER applied
VI_1 BACKUP applied
VI_1 MASTER applied
VI_1 BACKUP applied
VI_2 BACKUP applied"
got=$(cut -d' ' -f1-3 "$W/transitions")
[ "$got" = "$expected" ] && pass "journal: six transitions, in order, all applied" ||
	fail "journal order/outcomes:
$got"
# FIFO sequences strictly increase per instance across the step and the restart.
if awk '$4 > 0 { if (($1 in s) && $4 <= s[$1]) bad = 1; s[$1] = $4 } END { exit bad }' "$W/transitions"; then
	pass "FIFO sequences strictly increase per instance across the step and the new reader"
else
	fail "sequences not increasing"
fi
# The wall-clock times really went back (the journal records what the clock said).
if awk 'NR == 2 { t = $5 } NR == 3 { exit !($5 < t - 3000000000) }' "$W/transitions"; then
	pass "the recorded times went back by about an hour, and nothing depended on them"
else
	fail "the journal's times did not go back: the clock was not stepped"
fi
status=$("$bin" status --config "$W/kanotify.toml" 2>&1)
if grep -q 'VI_1.*BACKUP' <<<"$status" && grep -q 'VI_2.*BACKUP' <<<"$status"; then
	pass "status: VI_1 BACKUP, VI_2 BACKUP"
else
	fail "status: $status"
fi

[ $failures = 0 ] || {
	echo "$failures check(s) failed"
	exit 1
}
echo "all clock-step checks passed"
