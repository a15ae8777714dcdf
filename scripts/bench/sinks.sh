#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# argv mode with a consumer, per transition: what one `kanotify ... INSTANCE
# NAME STATE PRIO` costs when it also forwards the transition, next to a
# dash notify script that does the same with the usual command-line tool:
#   (a) kanotify, state + D-Bus StateChanged signal   (libsystemd dlopen()ed)
#   (b) scripts/bench/reference-notify-dbus.sh:   state file + log line + busctl emit
#   (c) kanotify, state + Unix socket (HTTP POST with the neutron headers)
#   (d) scripts/bench/reference-notify-socket.sh: state file + log line + curl --unix-socket
#   (e) kanotify, state only (no consumer): the baseline, for reference.
#
# The consumers are private: a dbus-daemon on its own configuration and
# socket (never the system or session bus), with a dbus-monitor counting the
# signals, and a socat listener on a Unix socket that answers every
# connection `HTTP/1.1 200 OK` with Content-Length: 0 from a file and appends
# what it receives to another file (no program is executed per connection).
# They run as children of this shell that are not reaped before the end, so
# their CPU never shows up in `times`; what is measured is the client side.
#
# Method (as scripts/bench/argv.sh). Variants run in batches of BATCH_SIZE
# invocations, the batches interleaved (a b c d e a b c d e ...) so that
# noise hits every variant alike.
#   CPU:  the children's user+sys time, from `times` before and after a
#         batch (getrusage(RUSAGE_CHILDREN), to the millisecond, so a batch
#         of 50 resolves 20 us per invocation; a script's count includes its
#         mktemp, mv and busctl or curl). Median over the batches.
#   wall: $EPOCHREALTIME (microseconds) around every single invocation,
#         fork and wait included, and for (a)-(d) the consumer's answer or
#         the bus daemon's. Median and 90th percentile over all.
# Nothing forks inside a measured batch except the invocation itself.
# Afterwards every delivery is checked: exit status 0 for every invocation,
# one "delivered" journal line per kanotify invocation (attempts 1), one
# signal per D-Bus invocation seen by the monitor, one POST per socket
# invocation received by the listener, with the right User-Agent.
#
#   scripts/bench/sinks.sh
#   KANOTIFY=/path/to/kanotify BATCHES=10 BATCH_SIZE=50 scripts/bench/sinks.sh
#   BENCH_TMP=/some/disk/dir scripts/bench/sinks.sh   (default /var/tmp)
# Needs dbus-daemon, dbus-monitor, busctl, curl, socat and libsystemd.so.0;
# as root, installs the missing ones with apt-get.
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
default_binary=$repo/build/release/notify/kanotify
KANOTIFY=${KANOTIFY:-$default_binary}
BATCHES=${BATCHES:-10}
BATCH_SIZE=${BATCH_SIZE:-50}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
ref_dbus=$repo/scripts/bench/reference-notify-dbus.sh
ref_socket=$repo/scripts/bench/reference-notify-socket.sh

die() {
  echo "sinks.sh: $*" >&2
  exit 1
}

[[ $BATCHES =~ ^[1-9][0-9]*$ && $BATCH_SIZE =~ ^[1-9][0-9]*$ ]] || die "BATCHES and BATCH_SIZE must be positive integers"

# Tools, by the Debian package that has them.
declare -A package_of=(
  [dbus-daemon]=dbus-daemon [dbus-monitor]=dbus-bin [busctl]=systemd
  [curl]=curl [socat]=socat [dash]=dash
)
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${package_of[$tool]}")
done
ldconfig -p 2>/dev/null | grep 'libsystemd\.so\.0 ' >/dev/null || missing+=(libsystemd0) # no -q: pipefail
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "sinks.sh: installing ${missing[*]}" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  else
    die "missing packages: ${missing[*]} (run as root on Debian to install them)"
  fi
fi

if [[ ! -x $KANOTIFY ]]; then
  [[ $KANOTIFY == "$default_binary" ]] || die "KANOTIFY=$KANOTIFY is not an executable"
  echo "sinks.sh: building $default_binary" >&2
  (cd "$repo" && cmake --preset release >/dev/null && cmake --build --preset release) >&2
fi
KANOTIFY=$(realpath "$KANOTIFY")
"$KANOTIFY" --help 2>/dev/null | grep -- '--router-id' >/dev/null || die "$KANOTIFY has no --router-id: too old for this benchmark"
[[ -x $ref_dbus && -x $ref_socket ]] || die "$ref_dbus or $ref_socket is missing or not executable"

work=$(mktemp -d "$BENCH_TMP/kanotify-bench-sinks.XXXXXX")
bus_pid='' monitor_pid='' listener_pid=''
cleanup() {
  local pid
  for pid in $monitor_pid $listener_pid $bus_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fstype=$(df --output=fstype "$work" | tail -n 1)
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
  echo "sinks.sh: warning: $BENCH_TMP is $fstype: fsync costs nothing there; set BENCH_TMP to a disk" >&2
fi

# Waits up to 5 s for the socket $1 to appear.
wait_for_socket() {
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $1 ]] && return 0
    sleep 0.05
  done
  die "$2 did not create $1 (see $3)"
}

# The private bus.
bus_socket=$work/bus.socket
bus_address=unix:path=$bus_socket
cat >"$work/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile </dev/null >"$work/bus.log" 2>&1 &
bus_pid=$!
wait_for_socket "$bus_socket" dbus-daemon "$work/bus.log"

# Counts the signals: one line per message with --profile. A probe signal
# (on another path) tells when the monitor is listening.
dbus-monitor --address "$bus_address" --profile "type='signal',interface='org.kanotify.Instance1'" \
  </dev/null >"$work/monitor.log" 2>"$work/monitor.err" &
monitor_pid=$!
for ((i = 0; ; i++)); do
  ((i < 100)) || die "dbus-monitor saw no probe signal (see $work/monitor.err)"
  timeout 10 busctl --address="$bus_address" emit /org/kanotify/probe org.kanotify.Instance1 StateChanged \
    'sssutta{sv}' probe MASTER "" 0 0 0 0 || die "busctl emit failed on $bus_address"
  sleep 0.05
  grep -q /org/kanotify/probe "$work/monitor.log" && break
done

# The agent: answers every connection with $work/response, appends what it
# receives to $work/requests. socat forks per connection but executes
# nothing; after sending the answer it waits for the client to close.
agent_socket=$work/agent.sock
printf 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' >"$work/response"
: >"$work/requests"
socat UNIX-LISTEN:"$agent_socket",fork,backlog=64 \
  "OPEN:$work/response,rdonly!!OPEN:$work/requests,wronly,append" </dev/null >"$work/listener.log" 2>&1 &
listener_pid=$!
wait_for_socket "$agent_socket" socat "$work/listener.log"
curl -q -s -f -o /dev/null --max-time 5 --unix-socket "$agent_socket" -d probe http://localhost/ ||
  die "the listener on $agent_socket did not answer 2xx to curl"

# Configurations. As root, kanotify accepts only a root-owned file nobody
# else can write; mktemp made $work ours, so the files are.
printf '[dbus]\nbus = "%s"\nsignal = true\n' "$bus_address" >"$work/dbus.toml"
printf '[dbus]\nsignal = false\n[socket]\npath = "%s"\n' "$agent_socket" >"$work/socket.toml"
printf '[dbus]\nsignal = false\n' >"$work/state.toml"
chmod 0644 "$work"/*.toml

variants=(kdbus sdbus ksocket ssocket kstate)
declare -A label=(
  [kdbus]="(a) kanotify, D-Bus signal"
  [sdbus]="(b) dash + busctl emit"
  [ksocket]="(c) kanotify, Unix socket"
  [ssocket]="(d) dash + curl --unix-socket"
  [kstate]="(e) kanotify, state only"
)
declare -A count=() failures=() dir=()
for variant in "${variants[@]}"; do
  count[$variant]=0
  failures[$variant]=0
  dir[$variant]=$work/$variant
  mkdir "${dir[$variant]}"
done
statuses=

# One invocation of variant $1 with state $2, as keepalived would run it:
# no terminal, stderr to /dev/null.
invoke() {
  case $1 in
    kdbus) "$KANOTIFY" --log-target stderr --config "$work/dbus.toml" --state-dir "${dir[kdbus]}" \
      INSTANCE VI_1 "$2" 100 2>/dev/null ;;
    sdbus) NOTIFY_DIR=${dir[sdbus]} NOTIFY_BUS_ADDRESS=$bus_address "$ref_dbus" INSTANCE VI_1 "$2" 100 2>/dev/null ;;
    ksocket) "$KANOTIFY" --log-target stderr --config "$work/socket.toml" --state-dir "${dir[ksocket]}" \
      --router-id r1 INSTANCE VI_1 "$2" 100 2>/dev/null ;;
    ssocket) NOTIFY_DIR=${dir[ssocket]} NOTIFY_AGENT_SOCKET=$agent_socket NOTIFY_ROUTER_ID=r1 \
      "$ref_socket" INSTANCE VI_1 "$2" 100 2>/dev/null ;;
    kstate) "$KANOTIFY" --log-target stderr --config "$work/state.toml" --state-dir "${dir[kstate]}" \
      INSTANCE VI_1 "$2" 100 2>/dev/null ;;
  esac
}

# Runs one invocation of $1 with the next state; a failure is counted and
# its exit status kept, not fatal.
run_one() {
  local n=${count[$1]} status=0
  if ((n % 2 == 0)); then state=MASTER; else state=BACKUP; fi
  count[$1]=$((n + 1))
  invoke "$1" "$state" || status=$?
  if ((status != 0)); then
    failures[$1]=$((failures[$1] + 1))
    statuses+=" $1:$status"
  fi
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
  children_ms=$ms
  to_ms "$cs"
  children_ms=$((children_ms + ms))
}
# "1m2.345s" -> 62345, into $ms, without forking.
to_ms() {
  local value=${1%s} minutes seconds
  minutes=${value%%m*}
  seconds=${value#*m}
  ms=$((10#$minutes * 60000 + 10#${seconds%.*} * 1000 + 10#${seconds#*.}))
}

echo "# kanotify sinks benchmark (argv mode with a consumer)"
echo "# binary:    $KANOTIFY"
echo "# scripts:   $ref_dbus, $ref_socket (/bin/sh -> $(readlink -f /bin/sh))"
echo "# tools:     $(busctl --version | head -n 1), $(curl --version | head -n 1 | cut -d' ' -f1-2), $(dbus-daemon --version | head -n 1), $(socat -V | grep -m1 'socat version' | cut -d' ' -f2-3)"
echo "# work dir:  $work ($fstype)"
echo "# load avg:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $BATCHES batches x $BATCH_SIZE invocations per variant, interleaved; STATE alternates MASTER/BACKUP"
echo "# reproduce: KANOTIFY=$KANOTIFY BATCHES=$BATCHES BATCH_SIZE=$BATCH_SIZE BENCH_TMP=$BENCH_TMP $repo/scripts/bench/sinks.sh"
echo

# Warm-up (page cache, first state file, journal and bus connection): not measured.
warmup=10
for variant in "${variants[@]}"; do
  for ((i = 0; i < warmup; i++)); do
    run_one "$variant"
  done
done

declare -A cpu_us=() wall_us=()
start_s=$SECONDS
for ((batch = 0; batch < BATCHES; batch++)); do
  for variant in "${variants[@]}"; do
    read_children_cpu
    before=$children_ms
    walls=()
    for ((i = 0; i < BATCH_SIZE; i++)); do
      t0=${EPOCHREALTIME/./}
      run_one "$variant"
      t1=${EPOCHREALTIME/./}
      walls+=($((t1 - t0)))
    done
    read_children_cpu
    cpu_us[$variant]+=" $(((children_ms - before) * 1000 / BATCH_SIZE))"
    wall_us[$variant]+=" ${walls[*]}"
  done
done
elapsed_s=$((SECONDS - start_s))

# The consumers must have lived through the run: had one died, this shell
# would have reaped it, and its CPU would be in the figures.
for pid in $bus_pid $monitor_pid $listener_pid; do
  kill -0 "$pid" 2>/dev/null || die "a consumer process ($pid) died during the run; the figures are void"
done

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
printf '%-32s %11s %12s %11s %9s\n' variant "CPU ms/inv" "wall ms/inv" "wall p90" failures
printf '%-32s %11s %12s %11s %9s\n' "" "(median)" "(median)" "" ""
for variant in "${variants[@]}"; do
  med_cpu[$variant]=$(quantile 0.5 "${cpu_us[$variant]}")
  med_wall[$variant]=$(quantile 0.5 "${wall_us[$variant]}")
  awk -v l="${label[$variant]}" -v c="${med_cpu[$variant]}" -v w="${med_wall[$variant]}" \
    -v p="$(quantile 0.9 "${wall_us[$variant]}")" -v f="${failures[$variant]}" \
    'BEGIN { printf "%-32s %11.3f %12.3f %11.3f %9d\n", l, c / 1000, w / 1000, p / 1000, f }'
done
ratio() {
  awk -v l="$1" -v ck="${med_cpu[$2]}" -v cs="${med_cpu[$3]}" -v wk="${med_wall[$2]}" -v ws="${med_wall[$3]}" '
    BEGIN {
      r = cs > 0 ? ck / cs : 0
      printf "%-32s %11.3f %12.3f %11s %9s  CPU target <= 1/3: %s\n", l, r, (ws > 0 ? wk / ws : 0), "", "",
        (r <= 1 / 3 ? "met" : "NOT met")
    }'
}
ratio "ratio (a)/(b), D-Bus" kdbus sdbus
ratio "ratio (c)/(d), Unix socket" ksocket ssocket
awk -v a="${med_cpu[kdbus]}" -v c="${med_cpu[ksocket]}" -v e="${med_cpu[kstate]}" \
  -v b="${med_cpu[sdbus]}" -v d="${med_cpu[ssocket]}" 'BEGIN {
    printf "# CPU of the sink beyond recording the state: kanotify D-Bus (a)-(e) %.3f ms, socket (c)-(e) %.3f ms\n",
      (a - e) / 1000, (c - e) / 1000
    printf "# 1/3 of the scripts CPU: D-Bus %.3f ms, socket %.3f ms (kanotify state only: %.3f ms)\n",
      b / 3000, d / 3000, e / 1000
  }'
echo
echo "# invocations measured per variant: $((BATCHES * BATCH_SIZE)) (plus $warmup warm-up); measuring took ${elapsed_s} s"
echo "# CPU: median over $BATCHES batches of (children user+sys delta / $BATCH_SIZE): the invocation's own processes only"
echo "# wall: per invocation, fork+exec+wait included; kanotify's includes its fdatasync/fsync calls, the scripts sync nothing"

# Checks. Everything counted includes the warm-up invocations.
sleep 0.5 # let the monitor print the last signals
problems=0
check() { # LABEL GOT EXPECTED
  local verdict=ok
  if [[ $2 != "$3" ]]; then
    verdict=MISMATCH
    problems=$((problems + 1))
  fi
  printf '#   %-64s %7s (expected %s) %s\n' "$1" "$2" "$3" "$verdict"
}
journal_count() { # DIR PATTERN...
  local file=$1/journal.jsonl
  shift
  local lines
  lines=$(cat "$file" 2>/dev/null || true)
  for pattern in "$@"; do
    lines=$(grep -F -- "$pattern" <<<"$lines" || true)
  done
  grep -c . <<<"$lines" || true
}
echo
echo "# checks (warm-up included):"
for variant in "${variants[@]}"; do
  check "${label[$variant]}: exit status 0" $((count[$variant] - failures[$variant])) "${count[$variant]}"
done
[[ -z $statuses ]] || echo "#   failed invocations (variant:status):$statuses"
for variant in kdbus ksocket kstate; do
  check "${label[$variant]}: applied transitions in journal" \
    "$(journal_count "${dir[$variant]}" '"type":"transition"' '"outcome":"applied"')" "${count[$variant]}"
done
check "${label[kdbus]}: dbus-signal delivered, 1 attempt" \
  "$(journal_count "${dir[kdbus]}" '"type":"delivery"' '"sink":"dbus-signal"' '"outcome":"delivered"' '"attempts":1}')" \
  "${count[kdbus]}"
check "${label[ksocket]}: socket delivered, 1 attempt" \
  "$(journal_count "${dir[ksocket]}" '"type":"delivery"' '"sink":"socket"' '"outcome":"delivered"' '"attempts":1}')" \
  "${count[ksocket]}"
check "${label[kstate]}: no delivery lines" "$(journal_count "${dir[kstate]}" '"type":"delivery"')" 0
for variant in sdbus ssocket; do
  check "${label[$variant]}: log lines" "$(wc -l <"${dir[$variant]}/notify.log")" "${count[$variant]}"
done
for variant in "${variants[@]}"; do
  expected=BACKUP
  ((count[$variant] % 2 == 1)) && expected=MASTER
  check "${label[$variant]}: state file" "$(cat "${dir[$variant]}/VI_1.state")" "$expected"
done
signals=$(grep -c $'\t/org/kanotify/instance/VI_5f1\torg.kanotify.Instance1\tStateChanged' "$work/monitor.log" || true)
check "StateChanged signals at /org/kanotify/instance/VI_5f1 on the bus" "$signals" $((count[kdbus] + count[sdbus]))
check "POST requests from kanotify received by the listener" \
  "$(grep -c '^User-Agent: kanotify' "$work/requests" || true)" "${count[ksocket]}"
check "POST requests from curl received by the listener (+1 probe)" \
  "$(grep -c '^User-Agent: curl' "$work/requests" || true)" $((count[ssocket] + 1))
check "... with X-Neutron-Router-Id: r1" "$(grep -c '^X-Neutron-Router-Id: r1' "$work/requests" || true)" \
  $((count[ksocket] + count[ssocket]))
check "... with X-Neutron-State: primary" "$(grep -c '^X-Neutron-State: primary' "$work/requests" || true)" \
  $(((count[ksocket] + 1) / 2 + (count[ssocket] + 1) / 2))
((problems == 0)) || die "$problems check(s) failed; the figures above are not trustworthy"
