#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The ordering storm of user hooks: TRANSITIONS transitions (default 1,000)
# over INSTANCES instances (default 50) in one burst, each handled by a hook
# that sleeps a random 0-20 ms, then appends what it saw to a file. Three
# ways to run the hooks, one after another, ROUNDS times (default 3):
#   (a) kanotify fifo, hooks with coalescing (the default): the burst is
#       written to the FIFO as keepalived writes it;
#   (b) kanotify fifo, coalescing off: every transition's hook runs;
#   (c) keepalived's way: every transition forks its notify script at once
#       and nobody waits (keepalived's notify_exec), here a bash loop that
#       starts `sh hook.sh TYPE NAME STATE PRIORITY &` per transition.
# Measured per run:
#   out of order  per instance, hooks that ran after a hook of a newer
#                 transition of the same instance (adjacent inversions in
#                 the order the hooks wrote), summed;
#   wrong final   instances whose last hook to write was not the one of
#                 their latest transition (a service left in the wrong state);
#   done ms       from the start of the burst until the hook of every
#                 instance's latest transition has written;
#   handler CPU   ms of user+sys: kanotify's own (a, b) and the hooks' (all).
# Each hook learns its transition's index: kanotify's KANOTIFY_SEQUENCE
# (consecutive per FIFO line), or BENCH_INDEX in the script's environment for
# (c), which is measurement only (keepalived passes no such thing).
#
#   KANOTIFY=build/release/notify/kanotify scripts/bench/hooks-storm.sh
#   INSTANCES=50 TRANSITIONS=1000 ROUNDS=3 BENCH_TMP=/var/tmp scripts/bench/hooks-storm.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
KANOTIFY=${KANOTIFY:-$here/../../build/release/notify/kanotify}
INSTANCES=${INSTANCES:-50}
TRANSITIONS=${TRANSITIONS:-1000}
ROUNDS=${ROUNDS:-3}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
[ -x "$KANOTIFY" ] || {
	echo "no kanotify binary at $KANOTIFY (build the release preset, or set KANOTIFY)" >&2
	exit 2
}
KANOTIFY=$(realpath "$KANOTIFY")
W=$(mktemp -d "$BENCH_TMP/kanotify-hooks-storm.XXXXXX")
reader=""
cleanup() {
	[ -n "$reader" ] && kill "$reader" 2>/dev/null
	jobs -p | xargs -r kill 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
ticks=$(getconf CLK_TCK)

# The hook: both ways run the same script. kanotify passes the event in the
# environment; keepalived passes TYPE NAME STATE PRIORITY.
cat >"$W/hook.sh" <<'EOF'
n=$(od -An -N1 -tu1 /dev/urandom)
sleep "$(printf '0.%03d' $((n % 21)))"
if [ -n "${KANOTIFY_INSTANCE:-}" ]; then
	echo "$KANOTIFY_INSTANCE $KANOTIFY_SEQUENCE" >>"$SEEN"
else
	echo "$2 $BENCH_INDEX" >>"$SEEN"
fi
EOF

# The burst: a fixed pseudo-random sequence of instances and states (awk's
# srand with a seed, so every run and every variant gets the same one).
awk -v n="$TRANSITIONS" -v k="$INSTANCES" 'BEGIN {
	srand(7); split("MASTER BACKUP FAULT", s, " ")
	for (i = 0; i < n; i++) printf "VI_%d %s\n", int(rand() * k), s[1 + int(rand() * 3)]
}' >"$W/burst"
# Index of every instance's latest transition.
awk '{ last[$1] = NR - 1 } END { for (i in last) print i, last[i] }' "$W/burst" | sort >"$W/latest"
instances_used=$(wc -l <"$W/latest")

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# Waits until SEEN holds the latest transition of every instance, or 120 s.
# With a journal, SEEN holds kanotify sequences: index = sequence - the
# burst's first sequence, which the journal holds before any hook runs.
wait_done() { # seen [journal] -> prints ms since $t0, or "timeout"
	local seen=$1 journal=${2:-} deadline=$(($(now_us) + 120000000)) n base=0
	while :; do
		if [ -n "$journal" ] && [ "$base" = 0 ]; then
			base=$(grep -so '"sequence":[0-9]*' "$journal" | cut -d: -f2 | sort -n | head -n 1)
			base=${base:-0}
		fi
		n=$(awk -v base="$base" 'NR == FNR { want[$1 " " $2] = 1; next } ($1 " " ($2 - base)) in want { c++ } END { print c + 0 }' \
			"$W/latest" "$seen" 2>/dev/null || echo 0)
		[ "$n" -ge "$instances_used" ] && { echo $((($(now_us) - t0) / 1000)); return; }
		[ "$(now_us)" -lt "$deadline" ] || { echo timeout; return; }
		sleep 0.005
	done
}

# "out_of_order wrong_final hooks_run" of a SEEN file (NAME INDEX lines).
judge() {
	awk 'NR == FNR { latest[$1] = $2; next }
		{ if (($1 in prev) && $2 < prev[$1]) ooo++; prev[$1] = $2; last[$1] = $2; runs++ }
		END { for (i in latest) if (last[i] != latest[i]) wrong++; printf "%d %d %d\n", ooo, wrong, runs }' \
		"$W/latest" "$1"
}

# CPU (ms) of a process and of its reaped children, from /proc/PID/stat.
proc_cpu() { # pid -> "self_ms children_ms"
	local stat rest
	stat=$(cat "/proc/$1/stat")
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo $(((${12} + ${13}) * 1000 / ticks)) $(((${14} + ${15}) * 1000 / ticks))
}

run_kanotify() { # coalesce(true|false) -> "done_ms ooo wrong runs self_ms hooks_ms"
	local dir=$W/k-$1-$round
	mkdir -p "$dir/state"
	: >"$dir/seen"
	cat >"$dir/kanotify.toml" <<EOF
state_dir = "$dir/state"
[dbus]
signal = false
[hooks]
any = [["/bin/sh", "$W/hook.sh"]]
coalesce = $1
EOF
	mkfifo "$dir/fifo"
	SEEN=$dir/seen "$KANOTIFY" fifo --config "$dir/kanotify.toml" --log-target stderr "$dir/fifo" 2>"$dir/err" &
	reader=$!
	exec 3<>"$dir/fifo"
	local lines
	lines=$(awk '{ printf "INSTANCE \"%s\" %s 100\n", $1, $2 }' "$W/burst")
	sleep 0.2 # the reader is up and waiting
	t0=$(now_us)
	printf '%s\n' "$lines" >&3
	local done_ms
	done_ms=$(wait_done "$dir/seen" "$dir/state/journal.jsonl")
	local cpu
	cpu=$(proc_cpu "$reader")
	exec 3>&-
	kill -TERM "$reader"
	wait "$reader" || true
	reader=""
	# KANOTIFY_SEQUENCE -> index in the burst: consecutive from the first line's.
	local base
	base=$(grep -o '"sequence":[0-9]*' "$dir/state/journal.jsonl" | cut -d: -f2 | sort -n | head -n 1)
	awk -v base="$base" '{ print $1, $2 - base }' "$dir/seen" >"$dir/seen.idx"
	echo "$done_ms $(judge "$dir/seen.idx") $cpu"
}

run_direct() { # -> "done_ms ooo wrong runs 0 hooks_ms"
	local dir=$W/direct-$round
	mkdir -p "$dir"
	: >"$dir/seen"
	local -a names states
	local i=0 name state
	while read -r name state; do
		names[i]=$name states[i]=$state
		i=$((i + 1))
	done <"$W/burst"
	# The spawner is a subshell of its own: its `times` after `wait` holds
	# exactly the hooks' CPU, not this shell's polling.
	(
		t0=$(now_us)
		for ((i = 0; i < ${#names[@]}; i++)); do
			SEEN=$dir/seen BENCH_INDEX=$i sh "$W/hook.sh" INSTANCE "${names[i]}" "${states[i]}" 100 &
		done
		wait
		times >"$dir/times" # not in a pipeline: that would be a child's times
		tail -n 1 "$dir/times" >"$dir/times.children"
	) &
	local spawner=$!
	t0=$(now_us)
	local done_ms
	done_ms=$(wait_done "$dir/seen")
	wait "$spawner"
	echo "$done_ms $(judge "$dir/seen") 0 $(cpu_delta "0m0.000s 0m0.000s" "$(cat "$dir/times.children")")"
}

# children user+sys between two `times` lines ("0m1.234s 0m0.567s"), in ms.
cpu_delta() {
	awk -v a="$1" -v b="$2" 'function ms(t,  m, s) { m = t; sub(/m.*/, "", m); s = t; sub(/^[0-9]+m/, "", s); sub(/s$/, "", s); return m * 60000 + s * 1000 }
		BEGIN { split(a, x, " "); split(b, y, " "); printf "%d\n", ms(y[1]) + ms(y[2]) - ms(x[1]) - ms(x[2]) }'
}

echo "# kanotify hooks ordering storm: $TRANSITIONS transitions over $instances_used instances in one burst,"
echo "# hooks sleep a random 0-20 ms; $ROUNDS rounds"
echo "# binary: $KANOTIFY ($("$KANOTIFY" --version 2>/dev/null | head -n 1))"
echo "# machine: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# reproduce: KANOTIFY=$KANOTIFY INSTANCES=$INSTANCES TRANSITIONS=$TRANSITIONS ROUNDS=$ROUNDS $0"
printf '%-36s %5s %10s %12s %10s %10s %12s %10s\n' variant round "done ms" "out of order" "wrong end" "hooks run" "kanotify ms" "hooks ms"
for ((round = 1; round <= ROUNDS; round++)); do
	for variant in a b c; do
		case $variant in
		a) label="(a) kanotify fifo, coalescing"; r=$(run_kanotify true) ;;
		b) label="(b) kanotify fifo, no coalescing"; r=$(run_kanotify false) ;;
		c) label="(c) keepalived-style concurrent exec"; r=$(run_direct) ;;
		esac
		# shellcheck disable=SC2086
		set -- $r
		printf '%-36s %5s %10s %12s %10s %10s %12s %10s\n' "$label" "$round" "$1" "$2" "$3" "$4" "$5" "$6"
	done
done
