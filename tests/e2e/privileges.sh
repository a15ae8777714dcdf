#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Least privilege, as root: a running `kanotify fifo` holds in its permitted
# set exactly the capabilities its configuration needs and nothing in its
# effective set (each use raises its capability for the one operation), its
# bounding set untouched, and a hook it runs as root gets root's
# capabilities back (it is the user's own program). Then every use, done
# for real with the effective set empty in between: an announcement sent
# inside a network namespace and captured on the peer, a hook run as another
# user (which reads kanotify's sets while kanotify waits for it) and killed
# at its timeout, an agent socket and a metrics textfile in directories
# that belong to another user.
#
#   tests/e2e/privileges.sh /path/to/kanotify
#
# Needs root with the capabilities checked here; else "skipped: ..." and 77.
set -uo pipefail
export PATH=/usr/sbin:/sbin:$PATH # ip, tcpdump

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
# checks it is $3 (hex, 16 digits), the effective set empty, the bounding
# set unchanged, and that the journal line says so.
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
	if [ "$prm" = "$3" ] && [ "$eff" = 0000000000000000 ] && [ "$bnd" = "$bounding" ]; then
		pass "$label: permitted $3, effective empty, bounding set unchanged"
	else
		fail "$label: CapPrm $prm CapEff $eff CapBnd $bnd, expected $3, 0 and bounding $bounding; $(tail -n 3 "$dir/stderr")"
	fi
	# Every thread, the FIFO reading one included (started after the reduction).
	local task
	for task in /proc/"$reader"/task/*; do
		[ "$(sed -n 's/^CapPrm:[[:space:]]*//p' "$task/status")" = "$3" ] &&
			[ "$(sed -n 's/^CapEff:[[:space:]]*//p' "$task/status")" = 0000000000000000 ] ||
			fail "$label: thread ${task##*/} has CapPrm/CapEff $(grep -E '^Cap(Prm|Eff)' "$task/status" | tr '\n' ' ')"
	done
	grep -q "capabilities: permitted .*, effective set empty between uses" "$dir/stderr" ||
		fail "$label: no log line reports the reduction; $(tail -n 3 "$dir/stderr")"
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
namespace = \"/proc/1/ns/net\"" 0000000000280000
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

# ---- Every use, for real, with the effective set empty in between ----
# A reader whose configuration needs every capability but CAP_SYS_PTRACE
# (a bus through /proc/PID/root is shown by systemd_units.sh): an
# announcement inside a namespace, hooks run as nobody, an agent socket and
# a metrics textfile in nobody's directories.
# A missing tool skips the rest, never hides a failure above.
skip_uses() {
	[ $failures = 0 ] || {
		echo "$failures check(s) failed"
		exit 1
	}
	skip "$@"
}
command -v tcpdump >/dev/null || skip_uses "the uses need tcpdump"
command -v socat >/dev/null || skip_uses "the uses need socat (scripts/deps.sh)"
U=$W/uses
mkdir -p "$U/state" "$U/nobody" "$U/out"
chmod 0755 "$W" "$U" # the hooks run as nobody
chmod 0777 "$U/out"
ns_a=kn-caps-$$-a ns_b=kn-caps-$$-b
capture="" listener=""
cleanup_uses() {
	[ -n "$capture" ] && kill "$capture" 2>/dev/null
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	cleanup
}
trap cleanup_uses EXIT
ip netns add "$ns_a" && ip netns add "$ns_b" &&
	ip link add ka0 netns "$ns_a" address 02:00:5e:10:00:0c type veth peer name kb0 netns "$ns_b" &&
	ip -n "$ns_a" link set ka0 up && ip -n "$ns_b" link set kb0 up &&
	ip -n "$ns_a" addr add 198.51.100.7/24 dev ka0 || skip_uses "cannot make the test namespaces"
# The agent listens in a directory only nobody may enter; so is the
# metrics directory.
socat -u UNIX-LISTEN:"$U/nobody/agent.sock",fork OPEN:"$U/out/agent-requests",creat,append &
listener=$!
for _ in $(seq 250); do [ -S "$U/nobody/agent.sock" ] && break; sleep 0.02; done
mkdir -p "$U/nobody/metrics"
chown -R nobody "$U/nobody"
chmod 0700 "$U/nobody" "$U/nobody/metrics"
ip netns exec "$ns_b" tcpdump -i kb0 -U -n -w "$U/capture.pcap" arp 2>"$U/tcpdump.log" &
capture=$!
for _ in $(seq 250); do grep -q "listening on" "$U/tcpdump.log" 2>/dev/null && break; sleep 0.02; done
# The hook reads its parent's (kanotify's) sets while kanotify waits for
# it, and who it runs as; the BACKUP one outlives its timeout.
cat >"$U/hook" <<'HOOK'
#!/bin/sh
out=$1
case $2 in
BACKUP)
	echo $$ >"$out/slow-pid"
	exec sleep 30 ;;
*)
	{
		echo "uid $(id -u)"
		sed -n 's/^\(Cap\(Prm\|Eff\)\):[[:space:]]*/\1 /p' /proc/$PPID/status
	} >"$out/hook-$2"
	;;
esac
HOOK
chmod 0755 "$U/hook"
printf '%s\n' "state_dir = \"$U/state\"" \
	'[dbus]' 'signal = false' \
	'[socket]' "path = \"$U/nobody/agent.sock\"" 'timeout_ms = 500' 'retries = 0' \
	'[metrics]' "textfile = \"$U/nobody/metrics/kanotify.prom\"" \
	'[garp]' 'count = 1' \
	'[hooks]' 'user = "nobody"' 'timeout_ms = 300' \
	"master = [[\"$U/hook\", \"$U/out\", \"MASTER\"]]" \
	"backup = [[\"$U/hook\", \"$U/out\", \"BACKUP\"]]" \
	'[instance.VI_1]' "namespace = \"$ns_a\"" 'interface = "ka0"' >"$U/kanotify.toml"
mkfifo "$U/fifo"
"$bin" fifo --config "$U/kanotify.toml" --log-target stderr --debug "$U/fifo" 2>"$U/stderr" &
reader=$!
needed=00000000002020e2 # SYS_ADMIN NET_RAW DAC_OVERRIDE SETUID SETGID KILL
deadline=$(($(now_ms) + 5000))
until [ "$(cap_field "$reader" CapPrm 2>/dev/null)" = $needed ] || [ "$(now_ms)" -ge "$deadline" ]; do sleep 0.02; done
printf 'INSTANCE "VI_1" MASTER 100\n' >"$U/fifo"
deadline=$(($(now_ms) + 5000))
until [ -s "$U/out/hook-MASTER" ] || [ "$(now_ms)" -ge "$deadline" ]; do sleep 0.02; done
seen=$(tr '\n' ' ' <"$U/out/hook-MASTER" 2>/dev/null)
[ "$seen" = "uid $(id -u nobody) CapPrm $needed CapEff 0000000000000000 " ] &&
	pass "uses: a hook run as nobody (setgid/setuid raised in the child) sees kanotify with CapPrm $needed, CapEff 0" ||
	fail "uses: the MASTER hook saw '${seen:-nothing}', expected uid $(id -u nobody), CapPrm $needed, CapEff 0"
printf 'INSTANCE "VI_1" BACKUP 100\n' >"$U/fifo"
# The BACKUP hook's timeout (300 ms), then SIGTERM to its group, as nobody.
deadline=$(($(now_ms) + 5000))
until grep -q '"outcome":"timed-out"' "$U/state/journal.jsonl" 2>/dev/null || [ "$(now_ms)" -ge "$deadline" ]; do
	sleep 0.05
done
slow=$(cat "$U/out/slow-pid" 2>/dev/null)
sleep 0.2
if grep -q '"outcome":"timed-out"' "$U/state/journal.jsonl" && [ -n "$slow" ] && ! kill -0 "$slow" 2>/dev/null; then
	pass "uses: the hook run as nobody was killed at its timeout (CAP_KILL raised for the kill)"
else
	fail "uses: the BACKUP hook (pid ${slow:-unknown}) was not killed at its timeout"
	[ -n "$slow" ] && kill -KILL "$slow" 2>/dev/null
fi
eff=$(cap_field "$reader" CapEff)
[ "$eff" = 0000000000000000 ] && pass "uses: CapEff still 0 after the transitions" ||
	fail "uses: CapEff $eff after the transitions"
kill -TERM "$reader"
wait "$reader" 2>/dev/null
reader=""
sleep 0.3
kill -INT "$capture"
wait "$capture" 2>/dev/null
capture=""
frames=$(tcpdump -r "$U/capture.pcap" -n 2>/dev/null | grep -c "198.51.100.7")
[ "$frames" -ge 1 ] && pass "uses: the announcement left inside namespace $ns_a ($frames ARP frame(s) captured on the peer)" ||
	fail "uses: no announcement captured on the peer; $(grep '"announce"' "$U/state/journal.jsonl" | head -c 600)"
grep -q "POST\|Transition\|VI_1" "$U/out/agent-requests" 2>/dev/null &&
	pass "uses: the agent socket in nobody's 0700 directory was reached (CAP_DAC_OVERRIDE raised for connect)" ||
	fail "uses: the agent got nothing; $(grep '"delivery"' "$U/state/journal.jsonl" | head -c 600)"
[ -s "$U/nobody/metrics/kanotify.prom" ] &&
	pass "uses: the metrics textfile was written in nobody's 0700 directory" ||
	fail "uses: no metrics textfile; $(grep -i metrics "$U/stderr" | tail -n 2)"

# A namespace given as another process's /proc/PID/ns/net: opening it is a
# ptrace access check, which root keeping fewer capabilities than the
# holder passes only with CAP_SYS_PTRACE (raised for the open alone).
ip netns exec "$ns_a" sleep 30 &
holder=$!
# ip enters the namespace, then execs sleep: wait until it is inside.
for _ in $(seq 250); do
	[ "$(readlink "/proc/$holder/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.02
done
ip netns exec "$ns_b" tcpdump -i kb0 --immediate-mode -U -n -w "$U/capture-proc.pcap" arp 2>"$U/tcpdump-proc.log" &
capture=$!
for _ in $(seq 250); do grep -q "listening on" "$U/tcpdump-proc.log" 2>/dev/null && break; sleep 0.02; done
printf '%s\n' "state_dir = \"$U/state-proc\"" '[dbus]' 'signal = false' '[garp]' 'count = 1' \
	'[instance.VI_2]' "namespace = \"/proc/$holder/ns/net\"" 'interface = "ka0"' >"$U/kanotify-proc.toml"
"$bin" --config "$U/kanotify-proc.toml" --log-target stderr --debug INSTANCE VI_2 MASTER 100 2>"$U/stderr-proc"
rc=$?
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
sleep 0.3
kill -INT "$capture"
wait "$capture" 2>/dev/null
capture=""
grep -q "capabilities: permitted cap_sys_admin,cap_net_raw,cap_sys_ptrace" "$U/stderr-proc" &&
	pass "/proc/PID/ns/net: permitted cap_sys_admin,cap_net_raw,cap_sys_ptrace" ||
	fail "/proc/PID/ns/net: expected cap_sys_ptrace among the permitted; $(grep capabilities "$U/stderr-proc")"
frames=$(tcpdump -r "$U/capture-proc.pcap" -n 2>/dev/null | grep -c "198.51.100.7")
[ "$rc" = 0 ] && [ "$frames" -ge 1 ] &&
	pass "/proc/PID/ns/net: entered and announced from inside ($frames ARP frame(s) on the peer)" ||
	fail "/proc/PID/ns/net: exit $rc, $frames frame(s); $(cat "$U/stderr-proc"); $(grep announce "$U/state-proc/journal.jsonl" | head -c 600)"

[ $failures = 0 ] || {
	echo "$failures check(s) failed"
	exit 1
}
echo "all privilege checks passed"
