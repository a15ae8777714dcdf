#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Announcement latency: how soon the first gratuitous ARP is on the wire.
#
# Two namespaces joined by a veth pair (created here, removed at the end).
# In namespace a, TRANSITIONS times, alternating:
#   kanotify: `kanotify --config C INSTANCE VI_1 MASTER 100` with a [garp]
#             table (count 1) for 198.51.100.1 on ka0 (the namespace given
#             as a path, so kanotify enters it itself, as for any instance);
#   arping:   `arping -q -U -c 1 -w 0 -I ka0 198.51.100.2` (iputils).
# tcpdump (--immediate-mode, kernel timestamps) captures on the peer end in
# namespace b for the whole run; each run's first frame is found by its
# address. Two measures:
#   dispatch: the event's time (event_time_usec in kanotify's journal:
#             CLOCK_REALTIME when the transition was parsed, the start of
#             dispatch) to the first frame's capture timestamp;
#   exec:     $EPOCHREALTIME in the subshell right before exec() to the
#             first frame, for kanotify and arping alike (both pay the same
#             fork and exec).
# Medians, 90th percentiles and minimums over all transitions.
#
#   scripts/bench/announce.sh                      (root; release build)
#   KANOTIFY=/path/to/kanotify TRANSITIONS=100 scripts/bench/announce.sh
set -euo pipefail
export LC_ALL=C
PATH="/usr/sbin:/sbin:$PATH"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KANOTIFY=${KANOTIFY:-$repo/build/release/notify/kanotify}
TRANSITIONS=${TRANSITIONS:-60}

die() {
	echo "announce.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (namespaces, packet sockets)"
[ -x "$KANOTIFY" ] || die "no kanotify at $KANOTIFY (cmake --preset release && cmake --build --preset release)"
command -v tcpdump >/dev/null || die "tcpdump is missing (scripts/deps.sh)"
command -v arping >/dev/null || die "arping is missing (scripts/deps.sh: iputils-arping)"
[[ $TRANSITIONS =~ ^[1-9][0-9]*$ ]] || die "TRANSITIONS must be a positive integer"

a="kn-bench-$$-a" b="kn-bench-$$-b"
run=$(mktemp -d /tmp/kanotify-announce-bench.XXXXXX)
tcpdump_pid=""
cleanup() {
	[ -z "$tcpdump_pid" ] || kill -INT "$tcpdump_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	ip netns del "$a" 2>/dev/null || true
	ip netns del "$b" 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT

ip netns add "$a"
ip netns add "$b"
ip link add ka0 netns "$a" address 02:00:5e:20:00:0a type veth peer name kb0 netns "$b"
ip -n "$a" link set lo up
ip -n "$b" link set lo up
ip -n "$a" link set ka0 up
ip -n "$b" link set kb0 up
ip -n "$a" addr add 198.51.100.1/24 dev ka0
ip -n "$a" addr add 198.51.100.2/24 dev ka0
mkdir "$run/state"
cat >"$run/kanotify.toml" <<CONF
state_dir = "$run/state"
[garp]
count = 1
[instance.VI_1]
namespace = "/run/netns/$a"
interface = "ka0"
addresses = ["198.51.100.1"]
CONF

ip netns exec "$b" tcpdump -Z root -i kb0 -U -n --immediate-mode --time-stamp-precision=micro \
	-w "$run/capture.pcap" arp 2>"$run/tcpdump.log" &
tcpdump_pid=$!
for _ in $(seq 100); do
	grep -q "listening on" "$run/tcpdump.log" && break
	sleep 0.05
done
grep -q "listening on" "$run/tcpdump.log" || die "tcpdump did not start: $(cat "$run/tcpdump.log")"

# The loop runs inside namespace a, so neither program pays for `ip netns exec`.
ip netns exec "$a" bash -c '
	set -u
	for i in $(seq "$1"); do
		( echo "kanotify $EPOCHREALTIME" >>"$2/starts"; exec "$3" --config "$2/kanotify.toml" INSTANCE VI_1 MASTER 100 ) 2>/dev/null
		sleep 0.05
		( echo "arping $EPOCHREALTIME" >>"$2/starts"; exec arping -q -U -c 1 -w 0 -I ka0 198.51.100.2 ) || true
		sleep 0.05
	done' bench "$TRANSITIONS" "$run" "$KANOTIFY"
sleep 0.3
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=""

tcpdump -r "$run/capture.pcap" -nn -tt 2>/dev/null |
	awk '/who-has 198.51.100.1 /{print "kanotify", $1} /who-has 198.51.100.2 /{print "arping", $1}' >"$run/frames"
grep -o '"type":"announce"[^}]*"event_time_usec":[0-9]*' "$run/state/journal.jsonl" |
	sed 's/.*"event_time_usec":\([0-9]*\)/\1/' >"$run/events"
grep '^kanotify' "$run/starts" >"$run/starts.kanotify"
grep '^arping' "$run/starts" >"$run/starts.arping"

# For each start time (last field, times `scale` to microseconds), the
# first frame of `program` at or after it, in microseconds.
latencies() { # program file scale
	awk -v prog="$1" -v scale="$3" '
		FNR == NR { if ($1 == prog) frames[nf++] = $2 * 1000000; next }
		{ t = $NF * scale; while (j < nf && frames[j] < t) j++; if (j < nf) printf "%.0f\n", frames[j] - t }
	' "$run/frames" "$2"
}
stats() { # label
	sort -n | awk -v label="$1" '{ v[n++] = $1 }
		END { if (n == 0) { print label ": no samples"; exit }
		      printf "%-36s n=%d  median %.0f us  p90 %.0f us  min %.0f us\n", label, n, v[int((n-1)/2)], v[int(0.9*(n-1))], v[0] }'
}
echo "kanotify $KANOTIFY, $TRANSITIONS transitions each, $(nproc) CPUs, kernel $(uname -r)"
echo "frames captured: $(grep -c '^kanotify' "$run/frames") kanotify, $(grep -c '^arping' "$run/frames") arping"
latencies kanotify "$run/events" 1 | stats "kanotify dispatch -> first frame"
latencies kanotify "$run/starts.kanotify" 1000000 | stats "kanotify exec -> first frame"
latencies arping "$run/starts.arping" 1000000 | stats "arping -U -c 1 exec -> first frame"
