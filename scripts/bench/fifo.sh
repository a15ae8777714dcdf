#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# FIFO mode throughput: how fast `kanotify fifo` turns a burst of keepalived
# FIFO lines into durable journal lines and state files.
#
# Per run: start `kanotify fifo` on a fresh FIFO and state directory, wait
# for it to say it is reading, then `cat` a prepared file of N lines
# (INSTANCES instances, each cycling MASTER -> BACKUP -> FAULT) into the
# FIFO. The writer blocks when the pipe is full and never drops a line (the
# reader holds the FIFO open read-write itself, so the open never blocks).
# The clock runs from just before the first write until a poll (every 50 ms,
# so up to 50 ms late) sees N lines in journal.jsonl. Then, before SIGTERM,
# the reader's peak RSS (VmHWM in /proc/PID/status) and CPU time
# (utime+stime in /proc/PID/stat) are read. After the reader has exited,
# the journal must hold exactly N transition lines and every instance's
# state file its last state in the input.
#
# The configuration sets [journal] max_bytes to 1 GiB so journal.jsonl is
# not rotated during the run (the default rotates at 8 MiB, and 100000
# lines are about 25 MiB); that way the line count is one `wc -l`.
# The reader's log (one line per transition) goes to a file in the run
# directory (--log-target stderr where the binary has that option).
#
#   scripts/bench/fifo.sh
#   KANOTIFY=/path/to/kanotify N=100000 INSTANCES=100 RUNS=3 scripts/bench/fifo.sh
#   BENCH_TMP=/some/disk/dir TIMEOUT=60 scripts/bench/fifo.sh   (defaults /var/tmp, 60 s per run)
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
default_binary=$repo/build/release/notify/kanotify
KANOTIFY=${KANOTIFY:-$default_binary}
N=${N:-100000}
INSTANCES=${INSTANCES:-100}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-60}
BENCH_TMP=${BENCH_TMP:-/var/tmp}

die() {
  echo "fifo.sh: $*" >&2
  exit 1
}

for var in N INSTANCES RUNS TIMEOUT; do
  [[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer"
done
if [[ ! -x $KANOTIFY ]]; then
  [[ $KANOTIFY == "$default_binary" ]] || die "KANOTIFY=$KANOTIFY is not an executable"
  echo "fifo.sh: building $default_binary" >&2
  (cd "$repo" && cmake --preset release >/dev/null && cmake --build --preset release) >&2
fi
KANOTIFY=$(realpath "$KANOTIFY")
# The log must reach RUN/log (the script waits for "reading FIFO" there), not
# journald; binaries older than --log-target use stderr when there is no journald.
log_opt=()
if "$KANOTIFY" fifo --help 2>/dev/null | grep -q -- '--log-target'; then
  log_opt=(--log-target stderr)
fi

work=$(mktemp -d "$BENCH_TMP/kanotify-bench-fifo.XXXXXX")
reader_pid=
cleanup() {
  if [[ -n $reader_pid ]] && kill -0 "$reader_pid" 2>/dev/null; then
    kill -TERM "$reader_pid" 2>/dev/null || true
    wait "$reader_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fstype=$(df --output=fstype "$work" | tail -n 1)
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
  echo "fifo.sh: warning: $BENCH_TMP is $fstype: fsync costs nothing there; set BENCH_TMP to a disk" >&2
fi

config=$work/kanotify.toml
printf '[journal]\nmax_bytes = 1073741824\n' >"$config"
chmod 0644 "$config"
ticks_per_s=$(getconf CLK_TCK)

# The input, and what each instance's state file must end up holding.
lines=$work/lines
awk -v n="$N" -v k="$INSTANCES" 'BEGIN {
  split("MASTER BACKUP FAULT", states, " ")
  for (i = 0; i < n; i++)
    printf "INSTANCE \"VI_%d\" %s 100\n", i % k, states[int(i / k) % 3 + 1]
}' >"$lines"
expected=$work/expected
awk '{ gsub(/"/, "", $2); last[$2] = $3 } END { for (name in last) print name, last[name] }' "$lines" |
  sort >"$expected"

echo "# kanotify FIFO-mode benchmark"
echo "# binary:   $KANOTIFY"
echo "# work dir: $work ($fstype)"
echo "# load avg: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $N lines, $INSTANCES instances, $RUNS runs; input line: $(head -n 1 "$lines")"
echo "# per run:  $KANOTIFY fifo --config $config --state-dir RUN/state ${log_opt[*]} RUN/fifo 2>RUN/log &"
echo "#           cat $lines > RUN/fifo; poll wc -l RUN/state/journal.jsonl every 50 ms; kill -TERM"
echo "# reproduce: KANOTIFY=$KANOTIFY N=$N INSTANCES=$INSTANCES RUNS=$RUNS BENCH_TMP=$BENCH_TMP $repo/scripts/bench/fifo.sh"
echo

journal_count() {
  if [[ -e $1 ]]; then wc -l <"$1"; else echo 0; fi
}

results=()
printf '%-5s %14s %10s %12s %12s %14s %10s\n' run "transitions/s" "seconds" "peak RSS MiB" "CPU seconds" "CPU us/trans." "write s"
for ((run = 1; run <= RUNS; run++)); do
  dir=$work/run$run
  mkdir "$dir"
  mkfifo "$dir/fifo"
  "$KANOTIFY" fifo --config "$config" --state-dir "$dir/state" "${log_opt[@]}" "$dir/fifo" 2>"$dir/log" &
  reader_pid=$!
  for ((i = 0; i < 100; i++)); do
    grep -q 'reading FIFO' "$dir/log" && break
    kill -0 "$reader_pid" 2>/dev/null || die "the reader exited at start: $(cat "$dir/log")"
    sleep 0.05
  done
  grep -q 'reading FIFO' "$dir/log" || die "the reader did not start within 5 s: $(cat "$dir/log")"

  t0=${EPOCHREALTIME/./}
  cat "$lines" >"$dir/fifo"
  t_written=${EPOCHREALTIME/./}
  deadline=$((t0 + TIMEOUT * 1000000))
  while (($(journal_count "$dir/state/journal.jsonl") < N)); do
    kill -0 "$reader_pid" 2>/dev/null || die "the reader died: $(tail -n 5 "$dir/log")"
    ((${EPOCHREALTIME/./} < deadline)) ||
      die "timeout: $(journal_count "$dir/state/journal.jsonl") of $N journal lines after $TIMEOUT s"
    sleep 0.05
  done
  t1=${EPOCHREALTIME/./}

  hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$reader_pid/status")
  stat_line=$(<"/proc/$reader_pid/stat")
  read -r -a fields <<<"${stat_line##*) }" # fields[0] is field 3 (state)
  cpu_ticks=$((fields[11] + fields[12]))   # fields 14 and 15: utime, stime
  kill -TERM "$reader_pid"
  status=0
  wait "$reader_pid" || status=$?
  reader_pid=
  ((status == 0)) || die "the reader exited with status $status: $(tail -n 5 "$dir/log")"

  # The result: exactly N transition lines, all applied, last states on disk.
  total=$(wc -l <"$dir/state/journal.jsonl")
  transitions=$(grep -c '^{"type":"transition",' "$dir/state/journal.jsonl" || true)
  applied=$(grep -c '"outcome":"applied"' "$dir/state/journal.jsonl" || true)
  ((total == N && transitions == N)) ||
    die "run $run: journal has $total lines, $transitions transitions; expected $N"
  while read -r name state; do
    [[ -f $dir/state/$name.state && $(<"$dir/state/$name.state") == "$state" ]] ||
      die "run $run: $name.state is not $state"
  done <"$expected"

  line=$(awk -v n="$N" -v us=$((t1 - t0)) -v w=$((t_written - t0)) -v kib="$hwm_kib" \
    -v ticks="$cpu_ticks" -v hz="$ticks_per_s" 'BEGIN {
      printf "%.0f %.3f %.1f %.2f %.2f %.3f", n / (us / 1e6), us / 1e6, kib / 1024, ticks / hz, ticks / hz * 1e6 / n, w / 1e6 }')
  results+=("$line")
  read -r rate secs rss cpu cpu_per w_s <<<"$line"
  printf '%-5s %14.0f %10.3f %12.1f %12.2f %14.2f %10.3f\n' "$run" "$rate" "$secs" "$rss" "$cpu" "$cpu_per" "$w_s"
  echo "#   run $run: $total journal lines ($applied applied), $INSTANCES state files checked, reader exit status 0"
  rm -rf "$dir"
done

# Median of each column over the runs.
printf '%s\n' "${results[@]}" | awk -v runs="$RUNS" '
  { for (c = 1; c <= 6; c++) v[c, NR] = $c }
  END {
    for (c = 1; c <= 6; c++) {
      n = 0
      for (r = 1; r <= NR; r++) s[++n] = v[c, r]
      for (i = 2; i <= n; i++) for (j = i; j > 1 && s[j - 1] + 0 > s[j] + 0; j--) { t = s[j]; s[j] = s[j - 1]; s[j - 1] = t }
      m[c] = (n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
    }
    printf "%-5s %14.0f %10.3f %12.1f %12.2f %14.2f %10.3f\n", "median", m[1], m[2], m[3], m[4], m[5], m[6]
  }'
echo
echo "# transitions/s = N / (first write -> N lines seen in journal.jsonl); the poll adds up to 50 ms"
echo "# write s: how long cat took to push all N lines into the FIFO (the reader drains it into memory)"
echo "# peak RSS: VmHWM and CPU: utime+stime ($ticks_per_s ticks/s) of the reader, read just before SIGTERM"
echo "# target: >= 10000 transitions/s, each durable (one fdatasync of the journal per batch)"
