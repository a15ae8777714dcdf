#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end: a keepalived reload (SIGHUP) in the middle of a failover storm,
# FIFO mode. Two namespaces, a real keepalived in each with N VRRP instances
# (N=200 by default; RELOAD_N overrides), every instance reported through
# vrrp_notify_fifo to "kanotify fifo", which records it and delivers it to a
# real Unix-socket consumer per node (kanotify_test_consumer);
# fifo_write_vrrp_states_on_reload is set, as in the shipped example.
#
# Node a (priority 150) is MASTER of everything, b (100) BACKUP. The storm:
# a's track file drops a's priority to 50, so every instance moves to b at
# once (both keepalived keep running: nothing but the reload is in the way).
# Once a tenth of b's instances have moved (as far as keepalived's buffered
# log tells), b's keepalived gets SIGHUP.
# Checked:
#   - b's old FIFO reader is gone within 1 s of the SIGHUP (keepalived kills
#     it at 1 s after its SIGTERM otherwise), and it stopped because
#     keepalived closed the FIFO, not at its deadline;
#   - a new reader runs, and neither node's reader ever died otherwise;
#   - every instance's state file holds keepalived's final state for it (the
#     last "(VI_n) Entering X STATE" of its log), on both nodes;
#   - each consumer's last message for every instance holds that state too,
#     and no consumer was ever sent an older transition after a newer one
#     (the same one again, which a retried delivery may do, is allowed).
#
#   tests/e2e/fifo_reload.sh KANOTIFY CONSUMER
#
# Needs root, network namespaces, keepalived and iproute2; otherwise prints
# "skipped: <reason>" and exits 77.
set -uo pipefail
export LC_ALL=C

[ $# -eq 2 ] || {
	echo "usage: $0 KANOTIFY CONSUMER" >&2
	exit 2
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KANOTIFY=$1
CONSUMER=$2
N=${RELOAD_N:-200}
if ! [[ $N =~ ^[1-9][0-9]*$ ]] || ((N > 1000)); then
	echo "fifo_reload.sh: RELOAD_N must be an integer in 1..1000" >&2
	exit 2
fi

skip() {
	echo "skipped: $*"
	exit 77
}
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/netns.sh
source "$here/../../scripts/lib/netns.sh"
[ "$(id -u)" = 0 ] || skip "needs root (it creates network namespaces and runs keepalived)"
command -v keepalived >/dev/null 2>&1 || skip "keepalived is not installed (scripts/deps.sh installs it)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
command -v pgrep >/dev/null 2>&1 || skip "pgrep (procps) is not installed"
kn_probe_netns || skip "cannot create a network namespace: $KN_ERROR"
[ -x "$CONSUMER" ] || {
	echo "fifo_reload.sh: no consumer at $CONSUMER" >&2
	exit 2
}

fail() {
	echo "FAIL: $*"
	for node in a b; do
		echo "----- node $node: kanotify.log (last 40 lines) -----"
		tail -n 40 "$(kn_kanotify_log "$node")" 2>/dev/null
		echo "----- node $node: keepalived.log (last 20 lines) -----"
		tail -n 20 "$(kn_ka_log "$node")" 2>/dev/null
	done
	exit 1
}

declare -A CONSUMER_PID=()
tmpfs=""
# shellcheck disable=SC2317  # the EXIT trap
on_exit() {
	local rc=$? node
	for node in a b; do
		[ -z "${CONSUMER_PID[$node]:-}" ] || kill -TERM "${CONSUMER_PID[$node]}" 2>/dev/null
	done
	(exit "$rc")
	kn_cleanup
	rc=$?
	if [ -n "$tmpfs" ]; then
		umount "$tmpfs" 2>/dev/null && rmdir "$tmpfs" 2>/dev/null
	fi
	return "$rc"
}

kn_init || fail "run directory: $KN_ERROR"
trap on_exit EXIT
# The run (state directories, FIFOs, logs) on its own tmpfs: this test is
# about the reload's hand-over, and a syncfs() on a filesystem shared with
# other busy processes can take longer than keepalived's second by itself
# (seen on a loaded CI machine). KN_KEEP=1 keeps it on disk, for reading.
if [ "${KN_KEEP:-0}" != 1 ] && mount -t tmpfs -o size=256m,mode=0700 kanotify-reload "$KN_RUN" 2>/dev/null; then
	tmpfs=$KN_RUN
	mkdir -p "$KN_RUN/a/state" "$KN_RUN/b/state"
fi
kn_prepare_binary "$KANOTIFY" >/dev/null || fail "$KN_ERROR"
pairs=$(((N + 254) / 255))
inst_if() { printf 'kn-%s%d\n' "$1" $((($2 - 1) / 255)); }
inst_vrid() { printf '%d\n' $((($2 - 1) % 255 + 1)); }
inst_addr() { printf '198.18.%d.%d\n' $(($1 / 250)) $(($1 % 250 + 1)); }
consumer_socket() { printf '%s\n' "$KN_RUN/$1/agent.sock"; }
consumer_log() { printf '%s\n' "$KN_RUN/$1/consumer.log"; }

for node in a b; do
	ip netns add "${KN_NS[$node]}" || fail "ip netns add ${KN_NS[$node]}"
	KN_NS_MADE[$node]=1 # read by kn_cleanup
	ip -n "${KN_NS[$node]}" link set lo up
done
for ((j = 0; j < pairs; j++)); do
	# shellcheck disable=SC2015  # any failing step fails the test
	ip link add "kn-a$j" netns "${KN_NS[a]}" type veth peer name "kn-b$j" netns "${KN_NS[b]}" &&
		ip -n "${KN_NS[a]}" addr add "10.77.$j.1/24" dev "kn-a$j" &&
		ip -n "${KN_NS[b]}" addr add "10.77.$j.2/24" dev "kn-b$j" &&
		ip -n "${KN_NS[a]}" link set "kn-a$j" up &&
		ip -n "${KN_NS[b]}" link set "kn-b$j" up || fail "veth pair $j"
done

# Configurations: FIFO mode on both nodes, the states written again on every
# reload, a track file on a that the storm uses to demote it.
for node in a b; do
	sd=$(kn_state_dir "$node")
	toml=$KN_RUN/$node/kanotify.toml
	printf '[dbus]\nsignal = false\n[socket]\npath = "%s"\ntimeout_ms = 2000\n' "$(consumer_socket "$node")" >"$toml"
	chmod 0644 "$toml"
	track_def="" track_use=""
	if [ "$node" = a ]; then
		track_def="vrrp_track_file demote {
    file \"$KN_RUN/a/demote\"
    weight -1
    init_file 0 overwrite
}"
		track_use="    track_file {
        demote
    }"
	fi
	{
		printf 'global_defs {\n    router_id reload_%s\n    script_user root\n    enable_script_security\n' "$node"
		printf '    vrrp_notify_fifo %s\n' "$(kn_fifo "$node")"
		printf '    vrrp_notify_fifo_script "%s fifo --config %s --state-dir %s --log-file %s"\n' \
			"$KN_BIN" "$toml" "$sd" "$(kn_kanotify_log "$node")"
		printf '    fifo_write_vrrp_states_on_reload\n}\n%s\n' "$track_def"
		for ((i = 1; i <= N; i++)); do
			printf 'vrrp_instance VI_%d {\n    state BACKUP\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n    virtual_ipaddress {\n        %s/32 dev %s\n    }\n%s\n}\n' \
				"$i" "$(inst_if "$node" "$i")" "$(inst_vrid "$node" "$i")" "${KN_PRIO[$node]}" "$(inst_addr "$i")" \
				"$(inst_if "$node" "$i")" "$track_use"
		done
	} >"$KN_RUN/$node/keepalived.conf"
	"$CONSUMER" "$(consumer_socket "$node")" "$(consumer_log "$node")" </dev/null >"$KN_RUN/$node/consumer.err" 2>&1 &
	CONSUMER_PID[$node]=$!
done
for node in a b; do
	for ((w = 0; w < 100; w++)); do
		[ -S "$(consumer_socket "$node")" ] && break
		sleep 0.05
	done
	[ -S "$(consumer_socket "$node")" ] || fail "the consumer of node $node did not listen: $(cat "$KN_RUN/$node/consumer.err")"
done

count_state() {
	local n
	n=$(grep -lx "$2" "$(kn_state_dir "$1")"/VI_*.state 2>/dev/null | wc -l)
	echo "${n:-0}"
}
wait_all() {
	local node=$1 state=$2 timeout=$3 start
	start=$(kn_now_us)
	while (($(count_state "$node" "$state") < N)); do
		(($(kn_ms_since "$start") < timeout)) ||
			fail "node $node: $(count_state "$node" "$state") of $N state files $state after $timeout ms"
		sleep 0.1
	done
}
# The FIFO reader(s) keepalived's VRRP process of node runs.
readers() { pgrep -P "$(kn_vrrp_pid "$1")" -f ' fifo ' | sort -n | tr '\n' ' '; }

started=$(kn_now_us)
start_timeout=$((20000 + N * 40))
kn_start_keepalived a || fail "$KN_ERROR"
wait_all a MASTER "$start_timeout"
kn_start_keepalived b || fail "$KN_ERROR"
wait_all b BACKUP "$start_timeout"
sleep 1
old_b=$(readers b)
old_b=${old_b% }
[[ $old_b =~ ^[0-9]+$ ]] || fail "node b should run one FIFO reader, found '${old_b}'"
readers_a=$(readers a)

# The storm, and the reload in the middle of it.
b_log=$(kn_ka_log b)
t0=$(kn_now_us)
echo 100 >"$KN_RUN/a/demote"
tenth=$(((N + 9) / 10))
while (($(grep -c 'Entering MASTER STATE' "$b_log") < tenth)); do
	(($(kn_ms_since "$t0") < 15000)) || fail "b's keepalived took over only $(grep -c 'Entering MASTER STATE' "$b_log") instances in 15 s"
	sleep 0.01
done
moved=$(grep -c 'Entering MASTER STATE' "$b_log")
t_hup=$(kn_now_us)
kill -HUP "${KN_KA_PID[b]}" || fail "SIGHUP to b's keepalived"
old_gone_ms=""
while :; do
	el=$(kn_ms_since "$t_hup")
	if kn_alive "$old_b"; then
		((el < 5000)) || fail "b's old FIFO reader (pid $old_b) still runs 5 s after the SIGHUP"
		sleep 0.01
		continue
	fi
	old_gone_ms=$el
	break
done
echo "reload of b after $moved of $N instances moved ($(kn_ms_since "$t0") ms into the storm); old reader gone $old_gone_ms ms after the SIGHUP"
((old_gone_ms < 1000)) || fail "b's old FIFO reader exited $old_gone_ms ms after the SIGHUP (keepalived's limit: 1 s)"
new_b=""
for ((w = 0; w < 100; w++)); do
	new_b=$(readers b)
	new_b=${new_b% }
	[[ $new_b =~ ^[0-9]+$ ]] && [ "$new_b" != "$old_b" ] && break
	sleep 0.05
done
{ [[ $new_b =~ ^[0-9]+$ ]] && [ "$new_b" != "$old_b" ]; } || fail "no new FIFO reader on node b after the reload (found '$new_b')"
grep -q "kanotify\[$old_b\] info: stopped reading after [0-9]* ms: every writer has closed the FIFO" "$(kn_kanotify_log b)" ||
	fail "b's old reader did not stop at keepalived's close of the FIFO"

# Final states: a BACKUP and b MASTER everywhere, then both consumers.
settle_timeout=$((30000 + N * 40))
wait_all b MASTER "$settle_timeout"
wait_all a BACKUP "$settle_timeout"
sleep 2 # stragglers: keepalived's log and late deliveries
for node in a b; do
	kn_fifo_reader_died "$node" && fail "keepalived of node $node logged that its FIFO reader terminated"
done
kn_alive "$new_b" || fail "b's new FIFO reader (pid $new_b) is gone"
[ "$(readers a)" = "$readers_a" ] || fail "node a's FIFO reader changed: '$readers_a' then '$(readers a)'"

# Per instance: keepalived's last logged state, the state file, the
# consumer's last message; and the consumer's sequences always increasing.
check_node() {
	local node=$1 dir s
	dir=$(kn_state_dir "$node")
	{
		sed -n 's/.*(\(VI_[0-9]*\)) Entering \([A-Z]*\) STATE.*/K \1 \2/p' "$(kn_ka_log "$node")"
		for ((i = 1; i <= N; i++)); do
			s=$(cat "$dir/VI_$i.state" 2>/dev/null) || s=none
			echo "F VI_$i ${s:-empty}"
		done
		sed 's/^/C /' "$(consumer_log "$node")"
	} | awk -v n="$N" -v node="$node" '
		$1 == "K" { last[$2] = $3; next }
		$1 == "F" { file[$2] = $3; next }
		$1 == "C" && $2 == "malformed" { malformed++; next }
		$1 == "C" { if ($2 in seq && $4 + 0 < seq[$2] + 0) backwards++; seq[$2] = $4; got[$2] = $3; messages++ }
		END {
			bad = 0
			for (i = 1; i <= n; i++) {
				name = "VI_" i
				if (!(name in last)) { printf "node %s %s: no state in keepalived'\''s log\n", node, name; bad++; continue }
				if (file[name] != last[name]) { printf "node %s %s: keepalived %s, state file %s\n", node, name, last[name], file[name]; bad++ }
				if (got[name] != last[name]) { printf "node %s %s: keepalived %s, consumer last got %s\n", node, name, last[name], (name in got) ? got[name] : "nothing"; bad++ }
			}
			if (malformed) { printf "node %s: %d malformed requests at the consumer\n", node, malformed; bad++ }
			if (backwards) { printf "node %s: %d messages older than one the consumer already had\n", node, backwards; bad++ }
			printf "node %s: %d messages at the consumer, %d instances wrong\n", node, messages, bad
			exit (bad > 0)
		}'
}
ok=1
for node in a b; do
	check_node "$node" || ok=0
done
((ok)) || fail "final states differ from keepalived's"
by_new=$(grep -c "\"type\":\"transition\".*\"pid\":$new_b," "$(kn_state_dir b)/journal.jsonl")
echo "PASS: N=$N, reload mid-storm: old reader gone after $old_gone_ms ms, the new one recorded $by_new transitions, every state file and consumer right ($(kn_ms_since "$started") ms in all)"
exit 0
