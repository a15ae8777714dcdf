#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Per transition, as keepalived pays it: from fork() in keepalived's process
# until the child is reaped, for
#   hook:  libkanotify-preload.so in the host's LD_PRELOAD, the transition
#          handled in the forked child (no exec);
#   exec:  the kanotify binary exec'd in the child (argv mode);
#   shell: scripts/bench/reference-notify.sh exec'd in the child (dash);
#   hook-floor, exec-floor: `kanotify --version` in place, /bin/true exec'd.
# The host is tests/preload/preload_host.cpp's `bench` mode, which forks
# and execs as keepalived's system_call_script() does; MASTER and BACKUP
# alternate, so each run is a real transition. Variants run in interleaved
# batches (hook exec shell hook exec shell ...) so that noise hits them
# alike. CPU: the child's user+system time from wait4(); wall: monotonic
# clock around fork..reap. Medians and 90th percentiles over all runs.
#
#   scripts/bench/preload.sh
#   BATCHES=10 BATCH_SIZE=50 BENCH_TMP=/var/tmp scripts/bench/preload.sh
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-$repo/build/release}
KANOTIFY=${KANOTIFY:-$build/notify/kanotify}
MODULE=${MODULE:-$build/plugin/libkanotify-preload.so}
HOST=${HOST:-$build/tests/preload/kanotify_preload_host}
BATCHES=${BATCHES:-10}
BATCH_SIZE=${BATCH_SIZE:-50}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
reference=$repo/scripts/bench/reference-notify.sh

die() {
  echo "preload.sh: $*" >&2
  exit 1
}
[[ $BATCHES =~ ^[1-9][0-9]*$ && $BATCH_SIZE =~ ^[1-9][0-9]*$ ]] || die "BATCHES and BATCH_SIZE must be positive integers"
if [[ ! -x $KANOTIFY || ! -f $MODULE || ! -x $HOST ]]; then
  [[ $build == "$repo/build/release" ]] || die "missing $KANOTIFY, $MODULE or $HOST"
  echo "preload.sh: building the release preset" >&2
  (cd "$repo" && cmake --preset release >/dev/null &&
    cmake --build --preset release -j2 --target kanotify kanotify_preload kanotify_preload_host) >&2
fi
KANOTIFY=$(realpath "$KANOTIFY")
MODULE=$(realpath "$MODULE")
HOST=$(realpath "$HOST")

work=$(mktemp -d "$BENCH_TMP/kanotify-bench-preload.XXXXXX")
trap 'rm -rf "$work"' EXIT
fstype=$(df --output=fstype "$work" | tail -n 1)
# No D-Bus signal, so that a system bus on the machine stays out of the figures.
config=$work/kanotify.toml
printf '[dbus]\nsignal = false\n' >"$config"
chmod 0644 "$config"
mkdir "$work/hook" "$work/exec" "$work/shell"
export NOTIFY_DIR=$work/shell

batch() {
  case $1 in
    hook) LD_PRELOAD=$MODULE KANOTIFY_BINARY=$KANOTIFY "$HOST" bench "$BATCH_SIZE" \
      "$KANOTIFY" --config "$config" --state-dir "$work/hook" --log-target stderr INSTANCE VI_1 MASTER 100 ;;
    exec) "$HOST" bench "$BATCH_SIZE" \
      "$KANOTIFY" --config "$config" --state-dir "$work/exec" --log-target stderr INSTANCE VI_1 MASTER 100 ;;
    shell) "$HOST" bench "$BATCH_SIZE" "$reference" INSTANCE VI_1 MASTER 100 ;;
    # Floors: the hook doing no work (kanotify --version in place, output
    # discarded by the host's stdout) and fork + exec of /bin/true.
    hook-floor) LD_PRELOAD=$MODULE KANOTIFY_BINARY=$KANOTIFY "$HOST" bench "$BATCH_SIZE" "$KANOTIFY" --version ;;
    exec-floor) "$HOST" bench "$BATCH_SIZE" /bin/true ;;
  esac 2>/dev/null | grep '^run ' >>"$work/$1.runs" || die "a $1 batch failed"
}

echo "# kanotify preload benchmark: per transition, fork until reaped"
echo "# binary $KANOTIFY, module $MODULE, host $HOST"
echo "# reference $reference (/bin/sh -> $(readlink -f /bin/sh)); work dir $work ($fstype)"
echo "# load avg $(cut -d' ' -f1-3 /proc/loadavg); $BATCHES batches x $BATCH_SIZE runs per variant, interleaved"
for ((b = 0; b < BATCHES; b++)); do
  for v in hook exec shell hook-floor exec-floor; do batch $v; done
done
# The journal says who handled the hook's transitions.
grep -q '"source":"preload"' "$work/hook/journal.jsonl" || die "the hook variant was not handled in place"
! grep -q '"source":"argv"' "$work/hook/journal.jsonl" || die "some hook-variant transitions were exec'd"

stats() { # column (2 wall, 3 cpu) -> "median p90"
  sort -n -k"$2" "$work/$1.runs" | awk -v c="$2" '{v[NR]=$c} END {m=int((NR+1)/2); p=int(NR*0.9+0.5); if (p<1) p=1; printf "%d %d", v[m], v[p]}'
}
printf '%-36s %6s %12s %12s %12s %12s\n' variant runs "cpu med us" "cpu p90 us" "wall med us" "wall p90 us"
for v in hook exec shell hook-floor exec-floor; do
  read -r cm cp <<<"$(stats $v 3)"
  read -r wm wp <<<"$(stats $v 2)"
  declare "cpu_${v/-/_}=$cm"
  printf '%-36s %6d %12d %12d %12d %12d\n' "$v" "$(wc -l <"$work/$v.runs")" "$cm" "$cp" "$wm" "$wp"
done
awk -v h="$cpu_hook" -v e="$cpu_exec" -v s="$cpu_shell" \
  'BEGIN {printf "hook/exec CPU %.2f (target <= 0.25), hook/shell CPU %.2f\n", h/e, h/s}'
