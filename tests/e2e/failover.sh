#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end: two real keepalived in network namespaces, node a reporting
# through kanotify's argv front-end, node b through its FIFO front-end.
# Start-up (a MASTER, b BACKUP), failover by SIGTERM to a's keepalived
# (b MASTER, a STOP), then b stopped too (STOP through the FIFO, which
# keepalived writes after it has sent SIGTERM to the reader).
#
#   tests/e2e/failover.sh /path/to/kanotify
#
# Needs root, network namespaces, keepalived and iproute2; otherwise prints
# "skipped: <reason>" and exits 77. Plain bash, grep and sed: no jq, no python.
set -uo pipefail

usage() {
	echo "usage: $0 /path/to/kanotify" >&2
	exit 2
}
[ $# -eq 1 ] || usage
bin=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/netns.sh
source "$here/../../scripts/lib/netns.sh"

skip() {
	echo "skipped: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (it creates network namespaces and runs keepalived)"
command -v keepalived >/dev/null 2>&1 || skip "keepalived is not installed (scripts/deps.sh installs it)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
kn_probe_netns || skip "cannot create a network namespace: $KN_ERROR"

# Timeouts (ms).
START_TIMEOUT=10000    # both nodes settled after start-up
FAILOVER_TIMEOUT=5000  # b MASTER after SIGTERM to a's keepalived
EXIT_TIMEOUT=5000      # a keepalived gone after SIGTERM
RECORD_TIMEOUT=3000    # a transition keepalived has sent is recorded

fail() {
	echo "FAIL: $1"
	[ $# -lt 2 ] || echo "  expected: $2"
	[ $# -lt 3 ] || echo "  found:    $3"
	echo "Logs of the run:"
	kn_dump_logs
	exit 1
}

pass() { echo "PASS: $*"; }

# A strict JSON syntax check of one text in plain bash: a tokenizer with
# bash regexes and a stack of open containers.
json_valid() {
	local s=$1 state=value stack="" tok len
	local re_ws='^[[:space:]]+'
	local re_str='^"([^"\\[:cntrl:]]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
	local re_num='^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?'
	local re_lit='^(true|false|null)'
	# states: value, value_or_close ([), key_or_close ({), key, colon, after, end
	while [ -n "$s" ]; do
		if [[ $s =~ $re_ws ]]; then
			s=${s:${#BASH_REMATCH[0]}}
			continue
		fi
		if [[ $s =~ $re_str ]]; then
			tok=string
			len=${#BASH_REMATCH[0]}
		elif [[ $s =~ $re_num ]] || [[ $s =~ $re_lit ]]; then
			tok=scalar
			len=${#BASH_REMATCH[0]}
		else
			tok=${s:0:1}
			len=1
		fi
		s=${s:len}
		case $state:$tok in
		value:string | value:scalar | value_or_close:string | value_or_close:scalar)
			state=after ;;
		key_or_close:string | key:string)
			state="colon"
			continue ;;
		colon::)
			state=value
			continue ;;
		value:\{ | value_or_close:\{)
			stack+=o
			state=key_or_close
			continue ;;
		value:\[ | value_or_close:\[)
			stack+=a
			state=value_or_close
			continue ;;
		key_or_close:\} | after:\})
			[ "${stack: -1}" = o ] || return 1
			stack=${stack%o}
			state=after ;;
		value_or_close:\] | after:\])
			[ "${stack: -1}" = a ] || return 1
			stack=${stack%a}
			state=after ;;
		after:,)
			[ -n "$stack" ] || return 1
			if [ "${stack: -1}" = o ]; then state=key; else state=value; fi
			continue ;;
		*)
			return 1 ;;
		esac
		# A value was completed.
		[ -n "$stack" ] || state=end
	done
	[ "$state" = end ]
}

# The value of a string member of one flat JSON line ("null" for null).
json_field() {
	local line=$1 key=$2 v
	v=$(printf '%s\n' "$line" | grep -o "\"$key\":\(\"[^\"]*\"\|null\|-\?[0-9]\+\)" | head -n 1)
	v=${v#*:}
	v=${v#\"}
	printf '%s\n' "${v%\"}"
}

# Checks node's journal (through `kanotify history --json`): every line is
# valid JSON, and the transitions of VI_1 are exactly the expected states, in
# order, each applied, each with the previous one as "previous". Polls while
# the journal is shorter than expected (the FIFO reader journals
# asynchronously), at most RECORD_TIMEOUT.
check_journal() {
	local node=$1
	shift
	local expected="$*" found="" out line n state prev want_prev waited=0 bad=""
	while :; do
		out=$(kn_history "$node" --json -n 0 2>"$KN_RUN/history.err") ||
			fail "kanotify history --json for node $node exited non-zero" "exit 0" "$(cat "$KN_RUN/history.err")"
		found=""
		bad=""
		want_prev=null
		n=0
		while IFS= read -r line; do
			[ -n "$line" ] || continue
			n=$((n + 1))
			if [[ $line != \{* ]] || ! json_valid "$line"; then
				fail "node $node journal line $n is not valid JSON" "a JSON object" "$line"
			fi
			[ "$(json_field "$line" type)" = transition ] || continue
			[ "$(json_field "$line" name)" = "$KN_INSTANCE" ] || continue
			state=$(json_field "$line" state)
			found+="${found:+ }$state"
			prev=$(json_field "$line" previous)
			[ "$(json_field "$line" kind)" = INSTANCE ] || bad="line $n: kind is not INSTANCE: $line"
			[ "$(json_field "$line" outcome)" = applied ] || bad="line $n: outcome is not applied: $line"
			[ "$prev" = "$want_prev" ] || bad="line $n: previous is '$prev', expected '$want_prev': $line"
			want_prev=$state
		done <<<"$out"
		[ "$found" = "$expected" ] && break
		# Wait only while what is there is a prefix of what is expected.
		if [ -n "$found" ] && [ "${expected#"$found "}" = "$expected" ]; then
			break
		fi
		((waited >= RECORD_TIMEOUT)) && break
		sleep 0.05
		waited=$((waited + 50))
	done
	[ "$found" = "$expected" ] ||
		fail "node $node journal: the transitions of $KN_INSTANCE" "$expected" "${found:-(none)}"
	[ -z "$bad" ] || fail "node $node journal: entries for $KN_INSTANCE" "outcome applied, previous chained" "$bad"
	pass "node $node journal: $KN_INSTANCE went ${expected// / -> }, $n valid JSON lines, all applied"
}

# keepalived logs these when it disables or distrusts a script.
check_no_script_complaints() {
	local node=$1 found
	found=$(grep -E 'SECURITY VIOLATION|Unsafe permissions|disabling|not executable|cannot be accessed|Cannot find script|Unable to (create|open)' "$(kn_ka_log "$node")")
	[ -z "$found" ] || fail "keepalived of node $node complained about its script" "no complaint" "$found"
}

command -v tcpdump >/dev/null 2>&1 || skip "tcpdump is not installed (scripts/deps.sh installs it)"
GARP_COUNT=3

KN_OBSERVER=1
kn_init || fail "setting up the run directory: $KN_ERROR"
kn_prepare_binary "$bin" || fail "$KN_ERROR"
kn_setup_netns || fail "creating the namespaces: $KN_ERROR"
for node in a b; do
	cat >"$KN_RUN/$node/kanotify.toml" <<EOF || fail "writing node $node's kanotify.toml"
[dbus]
signal = false
[garp]
mode = "reply"
count = $GARP_COUNT
interval_ms = 100
[instance.$KN_INSTANCE]
interface = "${KN_IF[$node]}"
addresses = ["$KN_VIP"]
EOF
done
kn_write_configs || fail "writing keepalived.conf: $KN_ERROR"
echo "run directory $KN_RUN, namespaces ${KN_NS[a]}, ${KN_NS[b]} and observer ${KN_NS[c]}"
ip netns exec "${KN_NS[c]}" tcpdump -Z root -i br0 -U -n --immediate-mode -w "$KN_RUN/observer.pcap" arp \
	2>"$KN_RUN/observer.log" &
for _ in $(seq 100); do
	grep -q "listening on" "$KN_RUN/observer.log" && break
	sleep 0.05
done
grep -q "listening on" "$KN_RUN/observer.log" || fail "tcpdump in the observer namespace" "listening" "$(cat "$KN_RUN/observer.log")"

# How many ARP replies for the VIP from node's MAC the observer saw.
observed_replies() {
	local mac
	mac=$(ip -n "${KN_NS[$1]}" link show "${KN_IF[$1]}" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
	tcpdump -r "$KN_RUN/observer.pcap" -nn -e 2>/dev/null |
		grep -c "^[0-9:.]* $mac > ff:ff:ff:ff:ff:ff, .* Reply $KN_VIP is-at $mac"
}

# Start-up. a first, alone, so that it wins the first election without a
# race; b then finds a master and stays BACKUP.
start=$(kn_now_us)
kn_start_keepalived a || fail "starting keepalived on node a: $KN_ERROR"
kn_wait_content "$(kn_state_file a)" MASTER "$START_TIMEOUT" ||
	fail "node a state file after start-up" "MASTER" "$KN_SEEN"
kn_start_keepalived b || fail "starting keepalived on node b: $KN_ERROR"
left=$((START_TIMEOUT - $(kn_ms_since "$start")))
((left > 0)) || left=0
kn_wait_content "$(kn_state_file b)" BACKUP "$left" ||
	fail "node b state file within $START_TIMEOUT ms of start-up" "BACKUP" "$KN_SEEN"
pass "start-up: node a MASTER, node b BACKUP after $(kn_fmt_ms "$(kn_ms_since "$start")")"
kn_wait_vip a 1 1000 || fail "VIP on node a after start-up" "present" "absent"
kn_wait_vip b 0 1000 || fail "VIP on node b after start-up" "absent" "present"
pass "VIP $KN_VIP on node a only"
check_no_script_complaints a
check_no_script_complaints b
pass "keepalived ran both scripts without script-security complaints"

# Failover.
t0=$(kn_now_us)
kn_signal_keepalived a || fail "SIGTERM to keepalived of node a: $KN_ERROR"
if ! kn_wait_content "$(kn_state_file b)" MASTER "$FAILOVER_TIMEOUT"; then
	kn_fifo_reader_died b && echo "note: keepalived of node b logged that its FIFO reader exited"
	fail "node b state file within $FAILOVER_TIMEOUT ms of SIGTERM to node a's keepalived" "MASTER" "$KN_SEEN"
fi
failover_ms=$(kn_ms_since "$t0")
pass "failover: node b MASTER $(kn_fmt_ms "$failover_ms") after SIGTERM to node a's keepalived"
kn_wait_vip b 1 1000 || fail "VIP on node b after failover" "present" "absent"
pass "VIP $KN_VIP moved to node b"
if kn_fifo_reader_died b; then
	fail "node b's FIFO reader while keepalived runs" "still running (keepalived never restarts it)" \
		"$(grep 'notify fifo script terminated' "$(kn_ka_log b)")"
fi
pass "node b's FIFO reader still runs"

# Each master's kanotify announced the VIP to the third namespace.
waited=0
while [ "$(observed_replies b)" -lt "$GARP_COUNT" ] && ((waited < 3000)); do
	sleep 0.1
	waited=$((waited + 100))
done
[ "$(observed_replies a)" = "$GARP_COUNT" ] ||
	fail "ARP replies for $KN_VIP from node a seen by the observer (start-up)" "$GARP_COUNT" "$(observed_replies a)"
[ "$(observed_replies b)" = "$GARP_COUNT" ] ||
	fail "ARP replies for $KN_VIP from node b seen by the observer (failover)" "$GARP_COUNT" "$(observed_replies b)"
grep -q '"type":"announce".*"outcome":"sent"' "$(kn_state_dir b)/journal.jsonl" ||
	fail "node b journal: an announce line with outcome sent" "present" "$(grep announce "$(kn_state_dir b)/journal.jsonl")"
pass "observer namespace received $GARP_COUNT announcements of $KN_VIP from node a at start-up and from node b after failover"

kn_wait_exit "${KN_KA_PID[a]}" "$EXIT_TIMEOUT" || fail "keepalived of node a exits after SIGTERM" "exited within $EXIT_TIMEOUT ms" "still running"
kn_wait_content "$(kn_state_file a)" STOP "$RECORD_TIMEOUT" ||
	fail "node a state file after its keepalived stopped" "STOP" "$KN_SEEN"
pass "node a state file says STOP"
check_journal a BACKUP MASTER STOP
check_journal b BACKUP MASTER

# b stops as well: keepalived SIGTERMs the FIFO reader and then writes the
# STOP line, which the reader must still record.
kn_stop_keepalived b "$EXIT_TIMEOUT" || fail "stopping keepalived of node b" "exited within $EXIT_TIMEOUT ms" "$KN_ERROR"
kn_wait_content "$(kn_state_file b)" STOP "$RECORD_TIMEOUT" ||
	fail "node b state file after its keepalived stopped (STOP comes through the FIFO after SIGTERM)" "STOP" "$KN_SEEN"
pass "node b state file says STOP"
check_journal b BACKUP MASTER STOP

for node in a b; do
	status=$(kn_status "$node" 2>&1) || fail "kanotify status for node $node exited non-zero" "exit 0" "$status"
	grep -Eq "^INSTANCE +$KN_INSTANCE +STOP( |\$)" <<<"$status" ||
		fail "kanotify status for node $node" "a line: INSTANCE $KN_INSTANCE STOP ..." "$status"
done
pass "kanotify status reports $KN_INSTANCE STOP on both nodes"

echo "failover time: $failover_ms ms"
echo "PASS"
