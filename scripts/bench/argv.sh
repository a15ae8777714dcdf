#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# argv mode, per transition: what one `kanotify ... INSTANCE NAME STATE PRIO`
# costs (as keepalived's generic `notify` runs it: a fresh process each
# time), next to scripts/bench/reference-notify.sh doing what a careful
# notify script does (atomic state file with mktemp + mv -f, one log line).
#
# Method. Variants run in batches of BATCH_SIZE invocations, the batches
# interleaved (A B C D A B C D ...) so that noise hits every variant alike.
#   CPU:  the children's user+sys time, from `times` before and after a
#         batch (getrusage(RUSAGE_CHILDREN), printed to the millisecond, so
#         a batch of 50 resolves 20 us per invocation; the shell variant's
#         count includes its mktemp and mv). Median over the batches.
#   wall: $EPOCHREALTIME (microseconds) around every single invocation,
#         fork and wait included. Median and 90th percentile over all.
# Nothing forks inside a measured batch except the invocation itself.
# Two reference rows: `kanotify --version` (loading and start-up, no work)
# and /bin/true (the floor: fork + exec of a small dynamically linked program).
#
#   scripts/bench/argv.sh
#   KANOTIFY=/path/to/kanotify BATCHES=20 BATCH_SIZE=50 scripts/bench/argv.sh
#   BENCH_TMP=/some/disk/dir scripts/bench/argv.sh   (default /var/tmp)
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
default_binary=$repo/build/release/notify/kanotify
KANOTIFY=${KANOTIFY:-$default_binary}
BATCHES=${BATCHES:-20}
BATCH_SIZE=${BATCH_SIZE:-50}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
reference=$repo/scripts/bench/reference-notify.sh

die() {
  echo "argv.sh: $*" >&2
  exit 1
}

[[ $BATCHES =~ ^[1-9][0-9]*$ && $BATCH_SIZE =~ ^[1-9][0-9]*$ ]] || die "BATCHES and BATCH_SIZE must be positive integers"
if [[ ! -x $KANOTIFY ]]; then
  [[ $KANOTIFY == "$default_binary" ]] || die "KANOTIFY=$KANOTIFY is not an executable"
  echo "argv.sh: building $default_binary" >&2
  (cd "$repo" && cmake --preset release >/dev/null && cmake --build --preset release) >&2
fi
KANOTIFY=$(realpath "$KANOTIFY")
# Log to stderr (here /dev/null) even where a journald socket exists, so the
# figures do not depend on journald; binaries older than --log-target log to
# stderr anyway when there is no journald.
log_opt=()
if "$KANOTIFY" --help 2>/dev/null | grep -q -- '--log-target'; then
  log_opt=(--log-target stderr)
fi
[[ -x $reference ]] || die "$reference is missing or not executable"
[[ -x /bin/true ]] || die "/bin/true is missing"

work=$(mktemp -d "$BENCH_TMP/kanotify-bench-argv.XXXXXX")
trap 'rm -rf "$work"' EXIT
fstype=$(df --output=fstype "$work" | tail -n 1)
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
  echo "argv.sh: warning: $BENCH_TMP is $fstype: fsync costs nothing there; set BENCH_TMP to a disk" >&2
fi

# An empty configuration, so that nothing under /etc is read. As root,
# kanotify accepts only a root-owned file nobody else can write; mktemp
# made $work ours, so the file is.
config=$work/kanotify.toml
: >"$config"
chmod 0644 "$config"
dir_k=$work/kanotify
dir_s=$work/shell
mkdir "$dir_k" "$dir_s"
export NOTIFY_DIR=$dir_s

variants=(kanotify shell startup floor)
declare -A label=(
  [kanotify]="kanotify (argv mode)"
  [shell]="reference-notify.sh (dash)"
  [startup]="kanotify --version (start-up only)"
  [floor]="/bin/true (fork+exec floor)"
)
declare -A count=([kanotify]=0 [shell]=0 [startup]=0 [floor]=0)

# One invocation of variant $1 with state $2, as keepalived would run it:
# no terminal, stderr to /dev/null.
invoke() {
  case $1 in
    kanotify) "$KANOTIFY" --config "$config" --state-dir "$dir_k" "${log_opt[@]}" INSTANCE VI_1 "$2" 100 2>/dev/null ;;
    shell) "$reference" INSTANCE VI_1 "$2" 100 2>/dev/null ;;
    startup) "$KANOTIFY" --version >/dev/null 2>&1 ;;
    floor) /bin/true INSTANCE VI_1 "$2" 100 ;;
  esac
}

# Cumulative CPU of waited-for children in ms, into $children_ms. `times`
# runs in this shell (a command substitution would fork and see nothing).
times_file=$work/times
children_ms=0
read_children_cpu() {
  local cu cs
  times >"$times_file"
  { read -r _ _ && read -r cu cs; } <"$times_file"
  to_ms "$cu"
  children_user=$ms
  to_ms "$cs"
  children_sys=$ms
  children_ms=$((children_user + children_sys))
}
# "1m2.345s" -> 62345, into $ms, without forking.
to_ms() {
  local value=${1%s} minutes seconds
  minutes=${value%%m*}
  seconds=${value#*m}
  ms=$((10#$minutes * 60000 + 10#${seconds%.*} * 1000 + 10#${seconds#*.}))
}

next_state() {
  local n=${count[$1]}
  if ((n % 2 == 0)); then state=MASTER; else state=BACKUP; fi
  count[$1]=$((n + 1))
}

echo "# kanotify argv-mode benchmark"
echo "# binary:    $KANOTIFY"
echo "# reference: $reference (/bin/sh -> $(readlink -f /bin/sh))"
echo "# work dir:  $work ($fstype)"
echo "# load avg:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BATCHES batches x $BATCH_SIZE invocations per variant, interleaved"
echo "# commands run per invocation (STATE alternates MASTER/BACKUP):"
echo "#   $KANOTIFY --config $config --state-dir $dir_k ${log_opt[*]} INSTANCE VI_1 STATE 100 2>/dev/null"
echo "#   NOTIFY_DIR=$dir_s $reference INSTANCE VI_1 STATE 100 2>/dev/null"
echo "# reproduce: KANOTIFY=$KANOTIFY BATCHES=$BATCHES BATCH_SIZE=$BATCH_SIZE BENCH_TMP=$BENCH_TMP $repo/scripts/bench/argv.sh"
echo

# Warm-up (page cache, first directory and journal creation): not measured.
for variant in "${variants[@]}"; do
  for ((i = 0; i < 10; i++)); do
    next_state "$variant"
    invoke "$variant" "$state" || die "$variant failed (warm-up)"
  done
done

declare -A cpu_us=() user_us=() sys_us=() wall_us=()
for ((batch = 0; batch < BATCHES; batch++)); do
  for variant in "${variants[@]}"; do
    read_children_cpu
    before=$children_ms before_user=$children_user before_sys=$children_sys
    walls=()
    for ((i = 0; i < BATCH_SIZE; i++)); do
      next_state "$variant"
      t0=${EPOCHREALTIME/./}
      invoke "$variant" "$state" || die "$variant failed (batch $batch)"
      t1=${EPOCHREALTIME/./}
      walls+=($((t1 - t0)))
    done
    read_children_cpu
    cpu_us[$variant]+=" $(((children_ms - before) * 1000 / BATCH_SIZE))"
    user_us[$variant]+=" $(((children_user - before_user) * 1000 / BATCH_SIZE))"
    sys_us[$variant]+=" $(((children_sys - before_sys) * 1000 / BATCH_SIZE))"
    wall_us[$variant]+=" ${walls[*]}"
  done
done

# Every invocation did its work: one journal line per kanotify run, one log
# line per shell run, and both state files hold the last state.
journal_lines=$(wc -l <"$dir_k/journal.jsonl")
[[ $journal_lines == "${count[kanotify]}" ]] ||
  die "journal.jsonl has $journal_lines lines, expected ${count[kanotify]}"
log_lines=$(wc -l <"$dir_s/notify.log")
[[ $log_lines == "${count[shell]}" ]] || die "notify.log has $log_lines lines, expected ${count[shell]}"
expected=BACKUP
((count[kanotify] % 2 == 1)) && expected=MASTER
[[ $(<"$dir_k/VI_1.state") == "$expected" ]] || die "kanotify state file: $(<"$dir_k/VI_1.state"), expected $expected"
expected=BACKUP
((count[shell] % 2 == 1)) && expected=MASTER
[[ $(<"$dir_s/VI_1.state") == "$expected" ]] || die "shell state file: $(<"$dir_s/VI_1.state"), expected $expected"

# Quantile $1 (0-1) of the numbers in $2, to stdout.
quantile() {
  tr ' ' '\n' <<<"$2" | grep . | sort -n | awk -v q="$1" '
    { v[NR] = $1 }
    END {
      if (q == 0.5 && NR % 2 == 0) { print (v[NR / 2] + v[NR / 2 + 1]) / 2; exit }
      i = int(q * NR + 0.999999); if (i < 1) i = 1; print v[i]
    }'
}

declare -A med_cpu=() med_wall=()
printf '%-36s %11s %9s %9s %12s %11s\n' variant "CPU ms/inv" "user ms" "sys ms" "wall ms/inv" "wall p90"
printf '%-36s %11s %9s %9s %12s %11s\n' "" "(median)" "(median)" "(median)" "(median)" ""
for variant in "${variants[@]}"; do
  med_cpu[$variant]=$(quantile 0.5 "${cpu_us[$variant]}")
  med_wall[$variant]=$(quantile 0.5 "${wall_us[$variant]}")
  awk -v l="${label[$variant]}" -v c="${med_cpu[$variant]}" -v u="$(quantile 0.5 "${user_us[$variant]}")" \
    -v s="$(quantile 0.5 "${sys_us[$variant]}")" -v w="${med_wall[$variant]}" \
    -v p="$(quantile 0.9 "${wall_us[$variant]}")" \
    'BEGIN { printf "%-36s %11.3f %9.3f %9.3f %12.3f %11.3f\n", l, c / 1000, u / 1000, s / 1000, w / 1000, p / 1000 }'
done
awk -v ck="${med_cpu[kanotify]}" -v cs="${med_cpu[shell]}" -v wk="${med_wall[kanotify]}" -v ws="${med_wall[shell]}" \
  'BEGIN { printf "%-36s %11.2f %9s %9s %12.2f\n", "ratio kanotify/shell", (cs > 0 ? ck / cs : 0), "", "", (ws > 0 ? wk / ws : 0) }'
echo
echo "# invocations measured per variant: $((BATCHES * BATCH_SIZE)) (plus 10 warm-up)"
echo "# CPU: median over $BATCHES batches of (children user+sys delta / $BATCH_SIZE); user/sys split is tick-sampled by the kernel"
echo "# wall: per invocation, fork+exec+wait included; kanotify's includes its fdatasync/fsync calls, the script syncs nothing"
