#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end: Debian's keepalived in two network namespaces, started with the
# environment of the shipped systemd drop-in (libkanotify-preload.so in
# LD_PRELOAD), generic `notify` naming the kanotify binary on both nodes.
#
#   tests/preload/keepalived_failover.sh MODULE KANOTIFY DROPIN
#
# The binary keepalived is told to run (and KANOTIFY_BINARY names) is a
# wrapper that appends to exec.log before exec'ing kanotify: every
# transition must be recorded with source `preload` while exec.log stays
# empty. Node a holds its BACKUP notify back (test-only delay) until after
# its MASTER one, so keepalived's children finish in reverse order. Each
# node also has a track script and a notify_master script of its own, which
# must keep working and must not carry the hook.
#
# Needs root, network namespaces, keepalived and iproute2; otherwise prints
# "skipped: <reason>" and exits 77.
set -uo pipefail

[ $# -eq 3 ] || {
	echo "usage: $0 MODULE KANOTIFY DROPIN" >&2
	exit 2
}
module=$(readlink -f -- "$1")
bin=$2
dropin=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/netns.sh
source "$here/../../scripts/lib/netns.sh"

skip() {
	echo "skipped: $*"
	exit 77
}
if [ "${KANOTIFY_SANITIZED:-0}" = 1 ]; then
	echo "skipped: the module is built with AddressSanitizer, which cannot be preloaded into programs built without it"
	exit 77
fi
[ "$(id -u)" = 0 ] || skip "needs root (it creates network namespaces and runs keepalived)"
command -v keepalived >/dev/null 2>&1 || skip "keepalived is not installed (scripts/deps.sh installs it)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed"
kn_probe_netns || skip "cannot create a network namespace: $KN_ERROR"

START_TIMEOUT=15000    # node a MASTER (after its held-back BACKUP), node b BACKUP
FAILOVER_TIMEOUT=5000  # b MASTER after SIGTERM to a's keepalived
RECORD_TIMEOUT=3000    # a transition keepalived has sent is recorded
BACKUP_DELAY_MS=5000   # node a's BACKUP notify is held back this long

fail() {
	echo "FAIL: $1"
	[ $# -lt 2 ] || echo "  expected: $2"
	[ $# -lt 3 ] || echo "  found:    $3"
	echo "Logs of the run:"
	kn_dump_logs
	for f in exec.log other.log track.log; do
		echo "----- $f -----"
		cat -- "$KN_RUN/$f" 2>/dev/null || echo "(empty or missing)"
	done
	exit 1
}
pass() { echo "PASS: $*"; }

# The drop-in's Environment= lines, with the installed paths mapped to this
# build: the module from the build tree, the binary keepalived runs.
declare -a ka_env=()
read_dropin() {
	local line key value seen_preload=0 seen_binary=0
	[ -r "$dropin" ] || fail "the configured drop-in" "a readable $dropin" "missing"
	while IFS= read -r line; do
		[[ $line == Environment=* ]] || continue
		line=${line#Environment=}
		key=${line%%=*}
		value=${line#*=}
		case $key in
		LD_PRELOAD)
			[ "${value##*/}" = libkanotify-preload.so ] ||
				fail "the drop-in's LD_PRELOAD" "…/libkanotify-preload.so" "$value"
			value=$module
			seen_preload=1 ;;
		KANOTIFY_BINARY)
			value=$wrapper
			seen_binary=1 ;;
		esac
		ka_env+=("$key=$value")
	done <"$dropin"
	((seen_preload && seen_binary)) ||
		fail "the drop-in sets LD_PRELOAD and KANOTIFY_BINARY" "both" "${ka_env[*]:-nothing}"
}

kn_init || fail "setting up the run directory: $KN_ERROR"
kn_prepare_binary "$bin" || fail "$KN_ERROR"
mkdir -p "$KN_RUN/bin" "$KN_RUN/lib"
# A copy of its own, so that "nobody has it mapped" at the end is about this
# run only (other tests preload the build tree's module at the same time).
cp -- "$module" "$KN_RUN/lib/libkanotify-preload.so" || fail "copying the module into $KN_RUN/lib"
module=$KN_RUN/lib/libkanotify-preload.so
wrapper=$KN_RUN/bin/kanotify-wrapper
cat >"$wrapper" <<EOF
#!/bin/sh
echo "exec \$\$ \$*" >>"$KN_RUN/exec.log"
exec "$KN_BIN" "\$@"
EOF
# Records how it was run: its arguments, LD_PRELOAD, and whether the hook
# is mapped into the shell that runs it.
for name in other track; do
	cat >"$KN_RUN/bin/$name.sh" <<EOF
#!/bin/sh
echo "\$* LD_PRELOAD=\${LD_PRELOAD-unset} mapped=\$(grep -c kanotify-preload /proc/\$\$/maps)" >>"$KN_RUN/$name.log"
exit 0
EOF
done
chmod 0755 "$wrapper" "$KN_RUN/bin/other.sh" "$KN_RUN/bin/track.sh"
# No D-Bus signal: the host's system bus is none of this test's business.
printf '[dbus]\nsignal = false\n' >"$KN_RUN/kanotify.toml"
chmod 0644 "$KN_RUN/kanotify.toml"
read_dropin

write_config() {
	local node=$1
	cat >"$KN_RUN/$node/keepalived.conf" <<EOF
global_defs {
    router_id kanotify_$node
    script_user root
    enable_script_security
}

vrrp_script chk {
    script "$KN_RUN/bin/track.sh $node"
    interval 1
}

vrrp_instance $KN_INSTANCE {
    state BACKUP
    interface ${KN_IF[$node]}
    virtual_router_id $KN_VRID
    priority ${KN_PRIO[$node]}
    advert_int 1
    virtual_ipaddress {
        $KN_VIP/$KN_PREFIX dev ${KN_IF[$node]}
    }
    track_script {
        chk
    }
    notify "$wrapper --config $KN_RUN/kanotify.toml --state-dir $(kn_state_dir "$node") --log-file $(kn_kanotify_log "$node") --log-target stderr"
    notify_master "$KN_RUN/bin/other.sh $node"
}
EOF
}

# As kn_start_keepalived, with the drop-in's environment set by env(1), so
# that keepalived itself is the first program to load the module.
start_keepalived() {
	local node=$1 dir=$KN_RUN/$1 waited=0
	shift
	ip netns exec "${KN_NS[$node]}" env "${ka_env[@]}" "$@" keepalived \
		--dont-fork --log-console --log-detail --no-syslog --vrrp \
		--use-file "$dir/keepalived.conf" --pid "$dir/keepalived.pid" \
		--vrrp_pid "$dir/vrrp.pid" --checkers_pid "$dir/checkers.pid" \
		</dev/null >>"$dir/keepalived.log" 2>&1 &
	KN_KA_PID[$node]=$!
	while [ ! -s "$dir/vrrp.pid" ]; do
		kn_alive "${KN_KA_PID[$node]}" || fail "keepalived of node $node exited at start-up"
		((waited < 5000)) || fail "keepalived of node $node did not start its VRRP process within 5 s"
		sleep 0.05
		waited=$((waited + 50))
	done
}

# "STATE:source:outcome ..." of every transition of the instance on NODE.
transitions() {
	local line out=""
	while IFS= read -r line; do
		[[ $line == *'"type":"transition"'* ]] || continue
		out+="${out:+ }$(grep -o '"state":"[A-Z_]*"' <<<"$line" | cut -d'"' -f4):$(grep -o '"source":"[a-z]*"' <<<"$line" | cut -d'"' -f4):$(grep -o '"outcome":"[a-z]*"' <<<"$line" | cut -d'"' -f4)"
	done <"$(kn_state_dir "$1")/journal.jsonl"
	echo "$out"
}
wait_transitions() {
	local node=$1 expected=$2 timeout=${3:-$RECORD_TIMEOUT} waited=0 found
	while :; do
		found=$(transitions "$node" 2>/dev/null)
		[ "$found" = "$expected" ] && return 0
		((waited >= timeout)) && fail "node $node journal" "$expected" "${found:-(none)}"
		sleep 0.05
		waited=$((waited + 50))
	done
}
execs() { if [ -f "$KN_RUN/exec.log" ]; then wc -l <"$KN_RUN/exec.log"; else echo 0; fi; }

kn_setup_netns || fail "creating the namespaces: $KN_ERROR"
write_config a
write_config b
echo "run directory $KN_RUN, namespaces ${KN_NS[a]} and ${KN_NS[b]}, environment: ${ka_env[*]}"

start=$(kn_now_us)
start_keepalived a KANOTIFY_TEST_PRELOAD_DELAY="BACKUP=$BACKUP_DELAY_MS"
kn_wait_content "$(kn_state_file a)" MASTER "$START_TIMEOUT" || fail "node a state after start-up" MASTER "$KN_SEEN"
start_keepalived b
kn_wait_content "$(kn_state_file b)" BACKUP "$START_TIMEOUT" || fail "node b state after start-up" BACKUP "$KN_SEEN"
pass "start-up: node a MASTER, node b BACKUP after $(kn_fmt_ms "$(kn_ms_since "$start")")"
kn_wait_vip a 1 1000 || fail "VIP on node a" present absent

# Node a's BACKUP child (forked first) finishes after its MASTER child.
wait_transitions a "MASTER:preload:applied BACKUP:preload:stale" $((BACKUP_DELAY_MS + RECORD_TIMEOUT))
pass "node a: BACKUP forked before MASTER but finished after it: journalled stale, state stays MASTER"
kn_wait_content "$(kn_state_file a)" MASTER 0 || fail "node a state after the late BACKUP" MASTER "$KN_SEEN"

t0=$(kn_now_us)
kn_signal_keepalived a || fail "SIGTERM to keepalived of node a: $KN_ERROR"
kn_wait_content "$(kn_state_file b)" MASTER "$FAILOVER_TIMEOUT" || fail "node b after failover" MASTER "$KN_SEEN"
pass "failover: node b MASTER $(kn_fmt_ms "$(kn_ms_since "$t0")") after SIGTERM to node a's keepalived"
kn_wait_vip b 1 1000 || fail "VIP on node b after failover" present absent
kn_wait_exit "${KN_KA_PID[a]}" 5000 || fail "keepalived of node a exits after SIGTERM" "exited" "still running"
kn_wait_content "$(kn_state_file a)" STOP "$RECORD_TIMEOUT" || fail "node a after its keepalived stopped" STOP "$KN_SEEN"
wait_transitions a "MASTER:preload:applied BACKUP:preload:stale STOP:preload:applied"
wait_transitions b "BACKUP:preload:applied MASTER:preload:applied"
pass "every transition recorded by the hook (source preload)"

# The track script ran every second on both nodes, without the hook.
sleep 1
for node in a b; do
	n=$(grep -c "^$node LD_PRELOAD=unset mapped=0$" "$KN_RUN/track.log")
	((n >= 2)) || fail "node $node's track script runs without the hook" "at least 2 runs with LD_PRELOAD unset, not mapped" "$(grep "^$node " "$KN_RUN/track.log" | tail -n 3)"
	bad=$(grep "^$node " "$KN_RUN/track.log" | grep -v "LD_PRELOAD=unset mapped=0$" | head -n 1)
	[ -z "$bad" ] || fail "node $node's track script never sees the hook" "LD_PRELOAD=unset mapped=0" "$bad"
done
pass "track scripts ran ($(wc -l <"$KN_RUN/track.log") runs), none with the hook in LD_PRELOAD or mapped"
for node in a b; do
	grep -q "^$node LD_PRELOAD=unset mapped=0$" "$KN_RUN/other.log" 2>/dev/null ||
		fail "node $node's notify_master script" "ran, without the hook" "$(cat "$KN_RUN/other.log" 2>/dev/null)"
done
pass "the notify_master scripts ran on both nodes, without the hook"

kn_stop_keepalived b 5000 || fail "stopping keepalived of node b" "exited within 5 s" "$KN_ERROR"
wait_transitions b "BACKUP:preload:applied MASTER:preload:applied STOP:preload:applied"
pass "node b STOP recorded by the hook"
check_execs=$(execs)
[ "$check_execs" = 0 ] || fail "no exec of the kanotify binary on either node" "exec.log empty" "$(cat "$KN_RUN/exec.log")"
pass "the kanotify binary was never exec'd (exec.log empty)"

# Nothing left behind: no process in either namespace, no process with the
# module mapped, no temporary in the state directories.
waited=0
while [ -n "$(ip netns pids "${KN_NS[a]}")$(ip netns pids "${KN_NS[b]}")" ] && ((waited < 3000)); do
	sleep 0.05
	waited=$((waited + 50))
done
left="$(ip netns pids "${KN_NS[a]}") $(ip netns pids "${KN_NS[b]}")"
[ -z "${left// /}" ] || fail "no process left in the namespaces" "none" "$left"
mapped=$(grep -l -- "$module" /proc/[0-9]*/maps 2>/dev/null | grep -v "^/proc/$$/")
[ -z "$mapped" ] || fail "no process with the module mapped" "none" "$mapped"
temps=$(find "$(kn_state_dir a)" "$(kn_state_dir b)" -name '*.tmp-*')
[ -z "$temps" ] || fail "no temporaries in the state directories" "none" "$temps"
pass "no process, no mapped module and no temporary file left"
echo "PASS"
