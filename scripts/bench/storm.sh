#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A failover storm: two network namespaces, one real keepalived in each with
# N VRRP instances (virtual_router_id 1..255 per segment, as many segments
# as needed, one /32 address per instance; each segment a bridge in a third
# namespace, c, with one veth port per node), every instance reported by
#   argv:    generic `notify` running the kanotify binary (argv mode), with
#            each instance's interface and address in kanotify.toml so that
#            overtaken invocations are detected against the kernel;
#   fifo:    vrrp_notify_fifo + vrrp_notify_fifo_script "kanotify fifo";
#   preload: generic `notify` with libkanotify-preload.so in keepalived's
#            LD_PRELOAD (transitions handled in the forked child);
#   shell:   generic `notify` running scripts/bench/reference-notify-consumers.sh
#            (state file by mktemp + mv, one log line, curl --unix-socket,
#            busctl emit; its paths hard-coded, as a real script would);
#   floor:   (not run by default) the preload hook doing nothing, i.e.
#            `kanotify --version` in place: what keepalived's fork of a
#            child and its exit cost, the least any notify pays. Only its
#            CPU means something; it records and delivers nothing.
# Each node has its own consumers, outside the namespaces: a private
# dbus-daemon (its own configuration; the system bus's default limits) and
# kanotify_storm_consumer (tests/e2e/storm_consumer.cpp), a Unix-socket HTTP
# listener answering 200 and a StateChanged subscriber on that bus, which
# records every message. kanotify sends to both ([socket] path, [dbus] bus),
# the shell script too (curl, busctl).
# Node a (priority 150) starts first and becomes MASTER of everything, node b
# (100) BACKUP; then every instance is forced over at once, by one of two
# scenarios:
#   stop:    a's keepalived gets SIGTERM (b MASTER, a STOP);
#   cut:     b's bridge ports are taken off their bridges, all at once: both
#            nodes keep their carrier and hear nothing, b becomes MASTER and a
#            stays MASTER (split brain).
# Measured per scenario and variant:
#   settle    from the SIGTERM or the cut until b's keepalived logged its last
#             "Entering MASTER STATE" (keepalived's own failover time);
#   b files   until every state file of b says MASTER, and the lag
#             behind keepalived (b files - settle);
#   files     until every state file is right on both sides (b MASTER, a
#             STOP or MASTER; "-" when some never were, see lost);
#   lost      transitions keepalived made (its log's "(VI_n) Entering X
#             STATE" lines, plus STOP for every instance of the stopped node)
#             that were not recorded (journal / the reference script's log),
#             over both nodes and the whole run;
#   order     instances whose applied transitions are not in keepalived's
#             order (a stale one, journalled and not applied, is not counted);
#   wrong     state files that do not hold the instance's last state;
#   cpu       the handlers' CPU during b's failover: user+system time of b's
#             VRRP process's children (reaped: cutime/cstime; still running,
#             the FIFO reader: its own times), per transition of b;
#   peak mem  b's memory cgroup peak during the failover (keepalived, the
#             handlers and the page cache they dirty), when a memory cgroup
#             (v1 or v2) is available;
# and at the consumers, per sink (socket, dbus), both nodes, the whole run:
#   rx/exp    messages received, against keepalived's transitions;
#   lost      transitions keepalived made that no message carried;
#   dup       messages repeating the instance's message just before (a
#             delivery made twice);
#   order     instances whose messages (repeats aside) are not in
#             keepalived's order (an older state arrived after a newer one);
#   last      instances whose last message is not their final state.
# Node a's handler CPU is not measured: in the stop scenario its processes
# are gone by then.
#
#   scripts/bench/storm.sh                      # N=500, four variants, both scenarios
#   N=100 SCENARIOS=cut scripts/bench/storm.sh fifo preload
#   CHECK=1 N=20 scripts/bench/storm.sh fifo    # exit 1 if kanotify loses
#                                               # or reorder, or a file or a
#                                               # consumer's last message is wrong
# BUILD (default build/release) holds notify/kanotify,
# plugin/libkanotify-preload.so and tests/e2e/kanotify_storm_consumer;
# KANOTIFY, MODULE and CONSUMER override them. Needs root, network
# namespaces, keepalived, iproute2, dbus-daemon, curl and busctl: exits 77
# otherwise.
set -uo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-$repo/build/release}
KANOTIFY=${KANOTIFY:-$build/notify/kanotify}
MODULE=${MODULE:-$build/plugin/libkanotify-preload.so}
CONSUMER=${CONSUMER:-$build/tests/e2e/kanotify_storm_consumer}
N=${N:-500}
CHECK=${CHECK:-0}
SCENARIOS=${SCENARIOS:-stop cut}
reference=$repo/scripts/bench/reference-notify-consumers.sh

die() {
	echo "storm.sh: $*" >&2
	exit 1
}
skip() {
	echo "skipped: $*"
	exit 77
}
if ! [[ $N =~ ^[1-9][0-9]*$ ]] || ((N > 60000)); then die "N must be an integer in 1..60000"; fi

# shellcheck source-path=SCRIPTDIR source=../lib/netns.sh
source "$repo/scripts/lib/netns.sh"

# ---------------------------------------------------------------- driver
if [ "${1:-}" != --one ]; then
	variants=("$@")
	[ ${#variants[@]} -gt 0 ] || variants=(argv fifo preload shell)
	for v in "${variants[@]}"; do
		case $v in argv | fifo | preload | shell | floor) ;; *) die "unknown variant '$v' (argv, fifo, preload, shell, floor)" ;; esac
	done
	read -r -a scenarios <<<"$SCENARIOS"
	[ ${#scenarios[@]} -gt 0 ] || die "SCENARIOS is empty (stop, cut)"
	for sc in "${scenarios[@]}"; do
		case $sc in stop | cut) ;; *) die "unknown scenario '$sc' (stop, cut)" ;; esac
	done
	[ "$(id -u)" = 0 ] || skip "needs root (it creates network namespaces and runs keepalived)"
	command -v keepalived >/dev/null 2>&1 || skip "keepalived is not installed (scripts/deps.sh installs it)"
	for tool in ip dbus-daemon curl busctl; do
		command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (scripts/deps.sh installs it)"
	done
	kn_probe_netns || skip "cannot create a network namespace: $KN_ERROR"
	[ -x "$KANOTIFY" ] || die "no kanotify binary at $KANOTIFY (set BUILD or KANOTIFY)"
	[ -x "$CONSUMER" ] || die "no consumer program at $CONSUMER (set BUILD or CONSUMER; built with the tests)"
	for v in "${variants[@]}"; do
		if [[ $v == preload || $v == floor ]] && [ ! -f "$MODULE" ]; then die "no preload module at $MODULE (set BUILD or MODULE)"; fi
	done
	results=$(mktemp)
	trap 'rm -f "$results"' EXIT
	echo "# kanotify failover storm: N=$N instances per node, $(nproc) CPUs, load avg $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(keepalived --version 2>&1 | head -n 1); kanotify $KANOTIFY; scenarios ${scenarios[*]}"
	rc=0
	for sc in "${scenarios[@]}"; do
		for v in "${variants[@]}"; do
			"${BASH_SOURCE[0]}" --one "$v" "$sc" | tee -a "$results" | grep -v '^RESULT '
			r=${PIPESTATUS[0]}
			((r == 0)) || rc=$r
		done
	done
	echo "# load avg at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '\n%-8s %-8s %5s %9s %9s %9s %8s %6s %6s %6s %9s %10s %9s\n' scenario variant N "settle s" "b files s" "files s" "lag s" lost order wrong "cpu s" "cpu/tr us" "peak MiB"
	while read -r _ sc v n settle bfiles files lag lost order wrong cpu per peak _; do
		printf '%-8s %-8s %5s %9s %9s %9s %8s %6s %6s %6s %9s %10s %9s\n' "$sc" "$v" "$n" "$settle" "$bfiles" "$files" "$lag" "$lost" "$order" "$wrong" "$cpu" "$per" "$peak"
	done < <(grep '^RESULT ' "$results")
	echo
	echo "consumers (both nodes, whole run): messages received/expected, transitions lost, messages repeating the one before, instances out of order, instances whose last message is not their final state"
	printf '%-8s %-8s %13s %5s %4s %5s %5s %13s %5s %4s %5s %5s\n' scenario variant "socket rx/exp" lost dup order last "dbus rx/exp" lost dup order last
	while read -r -a f; do
		printf '%-8s %-8s %13s %5s %4s %5s %5s %13s %5s %4s %5s %5s\n' "${f[1]}" "${f[2]}" "${f[14]}/${f[15]}" "${f[16]}" "${f[17]}" "${f[18]}" "${f[19]}" \
			"${f[20]}/${f[15]}" "${f[21]}" "${f[22]}" "${f[23]}" "${f[24]}"
	done < <(grep '^RESULT ' "$results")
	# The target: handler CPU per transition at most 1/10 of the shell script's.
	awk '$1 == "RESULT" { per[$2 " " $3] = $13; if ($3 == "shell") shell[$2] = $13 }
		END { for (k in per) { split(k, p, " "); if (p[2] != "shell" && shell[p[1]] > 0)
			printf "%s %s/shell handler CPU per transition: %.2f (target <= 0.10 for fifo and preload)\n", p[1], p[2], per[k] / shell[p[1]] } }' "$results" | sort
	exit "$rc"
fi

# ---------------------------------------------------------------- one run
variant=$2
scenario=${3:-stop}
pairs=$(((N + 254) / 255))
fail() {
	echo "FAIL ($scenario, $variant): $*"
	exit 1
}

kn_init || fail "run directory: $KN_ERROR"
KN_NS[c]="kanotify-$KN_ID-c"
kn_prepare_binary "$KANOTIFY" >/dev/null || fail "$KN_ERROR"
mkdir -p "$KN_RUN/bin" "$KN_RUN/lib"

# Instance i (1..N): veth pair j = (i-1)/255, VRID (i-1)%255+1, one address.
inst_if() { printf 'kn-%s%d\n' "$1" $((($2 - 1) / 255)); }
inst_vrid() { printf '%d\n' $((($2 - 1) % 255 + 1)); }
inst_addr() { printf '198.18.%d.%d\n' $(($1 / 250)) $(($1 % 250 + 1)); }

# Segment j: bridge brJ in namespace c, node a's kn-aJ and node b's kn-bJ
# plugged into it through their veth peers kc-aJ and kc-bJ. A bridge, not a
# plain veth pair between the nodes, so that the link can be cut without
# either node losing its carrier: a veth end set down takes its peer's
# carrier with it, and keepalived puts an instance whose interface is not
# running into FAULT on both sides.
setup_netns() {
	local node j out
	for node in a b c; do
		out=$(ip netns add "${KN_NS[$node]}" 2>&1) || fail "ip netns add: $out"
		KN_NS_MADE[$node]=1
		ip -n "${KN_NS[$node]}" link set lo up
	done
	for ((j = 0; j < pairs; j++)); do
		out=$({
			ip -n "${KN_NS[c]}" link add "br$j" type bridge mcast_snooping 0 &&
				ip -n "${KN_NS[c]}" link set "br$j" up &&
				for node in a b; do
					ip link add "kn-$node$j" netns "${KN_NS[$node]}" type veth peer name "kc-$node$j" netns "${KN_NS[c]}" &&
						ip -n "${KN_NS[c]}" link set "kc-$node$j" master "br$j" &&
						ip -n "${KN_NS[c]}" link set "kc-$node$j" up || exit 1
				done &&
				ip -n "${KN_NS[a]}" addr add "10.77.$j.1/24" dev "kn-a$j" &&
				ip -n "${KN_NS[b]}" addr add "10.77.$j.2/24" dev "kn-b$j" &&
				ip -n "${KN_NS[a]}" link set "kn-a$j" up &&
				ip -n "${KN_NS[b]}" link set "kn-b$j" up
		} 2>&1) || fail "segment $j: $out"
	done
}

# The cut: every one of b's bridge ports leaves its bridge in one `ip
# -batch`. Both veth pairs stay up (carrier on both nodes), nothing crosses.
cut_links() {
	local j out
	out=$(for ((j = 0; j < pairs; j++)); do echo "link set kc-b$j nomaster"; done |
		ip -n "${KN_NS[c]}" -batch - 2>&1) || fail "cutting the links: $out"
}

# Per node: a private dbus-daemon (its own configuration, the system bus's
# default limits: 256 connections per user, 64 incomplete) and the consumer
# program (socket listener + D-Bus subscriber), outside the namespaces and
# the memory cgroups. Their pids are in CONSUMER_PIDS.
CONSUMER_PIDS=()
bus_socket() { printf '%s\n' "$KN_RUN/$1/bus.sock"; }
agent_socket() { printf '%s\n' "$KN_RUN/$1/agent.sock"; }
consumer_out() { printf '%s\n' "$KN_RUN/$1/consumer.out"; }
start_consumers() {
	local node dir waited
	for node in a b; do
		dir=$KN_RUN/$node
		cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$(bus_socket "$node")</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
		dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile </dev/null >"$dir/bus.log" 2>&1 &
		CONSUMER_PIDS+=($!)
		waited=0
		until [ -S "$(bus_socket "$node")" ]; do
			((waited < 10000)) || fail "node $node's dbus-daemon did not start: $(tail -n 3 "$dir/bus.log")"
			sleep 0.05
			waited=$((waited + 50))
		done
		"$CONSUMER" --socket "$(agent_socket "$node")" --bus "unix:path=$(bus_socket "$node")" \
			--out "$(consumer_out "$node")" </dev/null >"$dir/consumer.log" 2>&1 &
		CONSUMER_PIDS+=($!)
		waited=0
		until [ -S "$(agent_socket "$node")" ]; do
			kn_alive "${CONSUMER_PIDS[-1]}" || fail "node $node's consumer exited: $(tail -n 3 "$dir/consumer.log")"
			((waited < 10000)) || fail "node $node's consumer did not start"
			sleep 0.05
			waited=$((waited + 50))
		done
	done
}
# shellcheck disable=SC2317  # called from the EXIT trap
stop_consumers() {
	local pid
	for pid in "${CONSUMER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${CONSUMER_PIDS[@]}"; do kn_wait_exit "$pid" 3000 || kill -KILL "$pid" 2>/dev/null; done
	return 0
}
# Waits (at most 20 s) until neither node's consumer has received anything
# for a second: deliveries still retrying or flushing are counted.
wait_consumers_quiet() {
	local before="" now waited=0
	while ((waited < 20000)); do
		now=$(cat "$(consumer_out a)" "$(consumer_out b)" 2>/dev/null | wc -l)
		[ "$now" = "$before" ] && return 0
		before=$now
		sleep 1
		waited=$((waited + 1000))
	done
}

write_configs() {
	local node i conf toml notify global_extra sd
	for node in a b; do
		sd=$(kn_state_dir "$node")
		toml=$KN_RUN/$node/kanotify.toml
		{
			printf '[dbus]\nbus = "unix:path=%s"\nsignal = true\n[socket]\npath = "%s"\n' "$(bus_socket "$node")" "$(agent_socket "$node")"
			printf '[journal]\nmax_bytes = 1073741824\n'
			if [ "$variant" = argv ]; then
				for ((i = 1; i <= N; i++)); do
					printf '[instance.VI_%d]\ninterface = "%s"\naddresses = ["%s"]\n' "$i" "$(inst_if "$node" "$i")" "$(inst_addr "$i")"
				done
			fi
		} >"$toml"
		chmod 0644 "$toml"
		global_extra=""
		notify=""
		case $variant in
		argv | preload)
			notify="    notify \"$KN_BIN --config $toml --state-dir $sd --log-file $(kn_kanotify_log "$node")\"" ;;
		floor)
			notify="    notify \"$KN_BIN --version\"" ;;
		fifo)
			global_extra="    vrrp_notify_fifo $(kn_fifo "$node")
    vrrp_notify_fifo_script \"$KN_BIN fifo --config $toml --state-dir $sd --log-file $(kn_kanotify_log "$node")\"" ;;
		shell)
			sed -e "s|^dir=/var/lib/keepalived-notify\$|dir=$sd|" \
				-e "s|^socket=/run/keepalived-notify/agent.sock\$|socket=$(agent_socket "$node")|" \
				-e "s|^bus=unix:path=/run/keepalived-notify/bus.sock\$|bus=unix:path=$(bus_socket "$node")|" \
				"$reference" >"$KN_RUN/bin/reference-$node.sh"
			if ! grep -q "^dir=$sd\$" "$KN_RUN/bin/reference-$node.sh" || ! grep -q "^socket=$(agent_socket "$node")\$" "$KN_RUN/bin/reference-$node.sh" ||
				! grep -q "^bus=unix:path=$(bus_socket "$node")\$" "$KN_RUN/bin/reference-$node.sh"; then
				fail "could not set the paths in $reference"
			fi
			chmod 0755 "$KN_RUN/bin/reference-$node.sh"
			notify="    notify \"$KN_RUN/bin/reference-$node.sh\"" ;;
		esac
		conf=$KN_RUN/$node/keepalived.conf
		{
			printf 'global_defs {\n    router_id storm_%s\n    script_user root\n    enable_script_security\n%s\n}\n' "$node" "$global_extra"
			for ((i = 1; i <= N; i++)); do
				printf 'vrrp_instance VI_%d {\n    state BACKUP\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n    virtual_ipaddress {\n        %s/32 dev %s\n    }\n%s\n}\n' \
					"$i" "$(inst_if "$node" "$i")" "$(inst_vrid "$node" "$i")" "${KN_PRIO[$node]}" "$(inst_addr "$i")" "$(inst_if "$node" "$i")" "$notify"
			done
		} >"$conf"
	done
}

# A memory cgroup per node when one can be made (v2 with the memory
# controller, else v1); keepalived is started inside it, its children inherit it.
declare -A CG=()
CG_KIND=none
make_cgroups() {
	local node base
	if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		CG_KIND=v2
		base=/sys/fs/cgroup
	elif [ -f /sys/fs/cgroup/memory/memory.max_usage_in_bytes ]; then
		CG_KIND=v1
		base=/sys/fs/cgroup/memory
	else
		return 0
	fi
	for node in a b; do
		CG[$node]=$base/kanotify-storm-$KN_ID-$node
		mkdir "${CG[$node]}" 2>/dev/null || {
			CG_KIND=none
			return 0
		}
	done
}
# shellcheck disable=SC2317  # called from the EXIT trap
remove_cgroups() {
	local node
	for node in a b; do
		[ -n "${CG[$node]:-}" ] && rmdir "${CG[$node]}" 2>/dev/null
	done
	return 0
}
cg_reset_peak() {
	case $CG_KIND in
	v1) echo 0 >"${CG[$1]}/memory.max_usage_in_bytes" 2>/dev/null ;;
	v2) [ -w "${CG[$1]}/memory.peak" ] && echo 0 >"${CG[$1]}/memory.peak" 2>/dev/null ;;
	esac
	return 0
}
cg_peak_mib() {
	local v=""
	case $CG_KIND in
	v1) v=$(cat "${CG[$1]}/memory.max_usage_in_bytes" 2>/dev/null) ;;
	v2) v=$(cat "${CG[$1]}/memory.peak" 2>/dev/null) ;;
	esac
	if [ -n "$v" ]; then awk -v b="$v" 'BEGIN {printf "%.1f", b / 1048576}'; else echo n/a; fi
}

start_keepalived() {
	local node=$1 dir=$KN_RUN/$1 waited=0 cg=${CG[$1]:-}
	local -a env=()
	[[ $variant != preload && $variant != floor ]] || env=(env "LD_PRELOAD=$KN_RUN/lib/libkanotify-preload.so" "KANOTIFY_BINARY=$KN_BIN")
	# The subshell joins the cgroup and execs: $! is keepalived's pid.
	(
		[ -z "$cg" ] || echo "$BASHPID" >"$cg/cgroup.procs"
		exec ip netns exec "${KN_NS[$node]}" "${env[@]}" keepalived \
			--dont-fork --log-console --log-detail --no-syslog --vrrp \
			--use-file "$dir/keepalived.conf" --pid "$dir/keepalived.pid" \
			--vrrp_pid "$dir/vrrp.pid" --checkers_pid "$dir/checkers.pid"
	) </dev/null >>"$dir/keepalived.log" 2>&1 &
	KN_KA_PID[$node]=$!
	while [ ! -s "$dir/vrrp.pid" ]; do
		kn_alive "${KN_KA_PID[$node]}" || fail "keepalived of node $node exited at start-up: $(tail -n 5 "$dir/keepalived.log")"
		((waited < 10000)) || fail "keepalived of node $node did not start its VRRP process within 10 s"
		sleep 0.05
		waited=$((waited + 50))
	done
}

# How many of node's state files hold STATE (floor: keepalived's log lines
# entering it; it has no files).
count_state() {
	local n
	if [ "$variant" = floor ]; then
		n=$(grep -c "Entering $2 STATE" "$(kn_ka_log "$1")" 2>/dev/null)
	else
		n=$(grep -lx "$2" "$(kn_state_dir "$1")"/VI_*.state 2>/dev/null | wc -l)
	fi
	echo "${n:-0}"
}
# Waits until all N state files of node hold STATE; sets WAITED_MS.
wait_all() {
	local node=$1 state=$2 timeout=$3 start
	start=$(kn_now_us)
	while (($(count_state "$node" "$state") < N)); do
		WAITED_MS=$(kn_ms_since "$start")
		if ((WAITED_MS >= timeout)); then
			# A handler that lost or reordered a start-up transition: the
			# storm still runs (its figures show it), except in CHECK mode.
			((!CHECK)) || fail "node $node: $(count_state "$node" "$state") of $N state files $state after $timeout ms"
			echo "$variant: node $node: only $(count_state "$node" "$state") of $N state files $state after $timeout ms"
			return 1
		fi
		sleep 0.1
	done
	WAITED_MS=$(kn_ms_since "$start")
}

# Clock ticks of CPU spent by the children of PID: reaped ones (cutime +
# cstime of PID) plus the live ones' own and reaped children's times.
handler_ticks() {
	local pid=$1 total=0 f s
	s=$(cat "/proc/$pid/stat" 2>/dev/null) || {
		echo 0
		return
	}
	s=${s##*) }
	read -r -a fs <<<"$s"
	total=$((fs[13] + fs[14]))
	for f in /proc/[0-9]*/stat; do
		s=$(cat "$f" 2>/dev/null) || continue
		s=${s##*) }
		read -r -a fs <<<"$s"
		[ "${fs[1]}" = "$pid" ] || continue
		total=$((total + fs[11] + fs[12] + fs[13] + fs[14]))
	done
	echo "$total"
}

# The consumers first: kn_cleanup waits for every child of this shell.
trap 'stop_consumers; kn_cleanup; remove_cgroups' EXIT
setup_netns
if [[ $variant == preload || $variant == floor ]]; then
	cp -- "$MODULE" "$KN_RUN/lib/libkanotify-preload.so" || fail "copying the module"
	chmod 0644 "$KN_RUN/lib/libkanotify-preload.so"
fi
write_configs
make_cgroups
start_consumers

# Start-up: a alone wins every election, then b joins as BACKUP.
start_timeout=$((20000 + N * 40))
start_keepalived a
wait_all a MASTER "$start_timeout" &&
	echo "$variant: node a MASTER of $N instances after $(kn_fmt_ms "$WAITED_MS")"
start_keepalived b
wait_all b BACKUP "$start_timeout" &&
	echo "$variant: node b BACKUP of $N instances after $(kn_fmt_ms "$WAITED_MS")"
sleep 2 # let stragglers (late children, GARP repeats) finish
vrrp_b=$(kn_vrrp_pid b)
ticks0=$(handler_ticks "$vrrp_b")
cg_reset_peak b

# The storm. What node a's state files must end up holding: STOP once its
# keepalived stopped, MASTER when it no longer hears b (split brain).
b_log=$(kn_ka_log b)
timeout_ms=$((30000 + N * 40))
a_final=STOP
[ "$scenario" = stop ] || a_final=MASTER
t0=$(kn_now_us)
case $scenario in
stop) kn_signal_keepalived a || fail "$KN_ERROR" ;;
cut) cut_links ;;
esac
settle_ms="" files_ms="" b_ms=""
while :; do
	el=$(kn_ms_since "$t0")
	if [ -z "$settle_ms" ] && (($(grep -c 'Entering MASTER STATE' "$b_log") >= N)); then settle_ms=$el; fi
	if [ -z "$b_ms" ] && (($(count_state b MASTER) >= N)); then b_ms=$el; fi
	if [ -n "$b_ms" ] && [ -z "$files_ms" ] && (($(count_state a "$a_final") >= N)); then files_ms=$el; fi
	[ -n "$settle_ms" ] && [ -n "$files_ms" ] && break
	# a's keepalived gone 5 s ago: nothing will write its files any more.
	if [ "$scenario" = stop ] && [ -z "${a_gone_ms:-}" ] && ! kn_alive "${KN_KA_PID[a]}"; then a_gone_ms=$el; fi
	[ -n "$settle_ms" ] && [ -n "$b_ms" ] && [ -n "${a_gone_ms:-}" ] && ((el - a_gone_ms > 5000)) && break
	((el < timeout_ms)) || break
	sleep 0.05
done
sleep 1
ticks1=$(handler_ticks "$vrrp_b")
peak=$(cg_peak_mib b)
if [ "$scenario" = stop ]; then
	kn_wait_exit "${KN_KA_PID[a]}" 10000 || fail "keepalived of node a did not exit"
fi
[ -n "$settle_ms" ] || fail "b's keepalived logged only $(grep -c 'Entering MASTER STATE' "$b_log") of $N 'Entering MASTER STATE' within $timeout_ms ms"
[ -n "$files_ms" ] || echo "$variant: state files not all right after $(kn_ms_since "$t0") ms: b MASTER $(count_state b MASTER), a $a_final $(count_state a "$a_final") of $N"
wait_consumers_quiet

# b's transitions during the storm: what its handlers' CPU is divided by.
b_moves=$(grep -c 'Entering MASTER STATE' "$b_log")
hz=$(getconf CLK_TCK)
cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}')
per=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" -v n="$b_moves" 'BEGIN {printf "%d", t / hz * 1e6 / n}')
fmt_s() { if [ -n "$1" ]; then awk -v m="$1" 'BEGIN {printf "%.2f", m / 1000}'; else echo "-"; fi; }
if [ "$variant" = floor ]; then
	echo "$scenario floor: settle $(fmt_s "$settle_ms") s; handler CPU $cpu s, $per us per transition of b (nothing recorded or delivered: not checked)"
	echo "RESULT $scenario $variant $N $(fmt_s "$settle_ms") - - - - - - $cpu $per $peak - - - - - - - - - - - -"
	exit 0
fi

# Correctness over the whole run, both nodes: keepalived's log (and STOP for
# every instance of the stopped node) against what the handlers recorded
# and what the consumers received.
# Records: "VI_n STATE applied|other" lines, in the order they were made.
records() {
	local dir
	dir=$(kn_state_dir "$1")
	if [ "$variant" = shell ]; then
		awk '{print $2, $3, "applied"}' "$dir/notify.log" 2>/dev/null
	else
		sed -n 's/.*"type":"transition".*"name":"\([^"]*\)".*"state":"\([A-Z_]*\)".*"outcome":"\([a-z]*\)".*/\1 \2 \3/p' "$dir/journal.jsonl" 2>/dev/null
	fi
}
# Prints "lost order wrong expected  socket: rx lost dup order last  dbus:
# rx lost dup order last  bad" for node.
check_node() {
	local node=$1 stopped=$2 dir
	dir=$(kn_state_dir "$node")
	{
		sed -n 's/.*(\(VI_[0-9]*\)) Entering \([A-Z]*\) STATE.*/E \1 \2/p' "$(kn_ka_log "$node")"
		if ((stopped)); then for ((i = 1; i <= N; i++)); do echo "E VI_$i STOP"; done; fi
		records "$node" | sed 's/^/R /'
		for ((i = 1; i <= N; i++)); do
			s=$(cat "$dir/VI_$i.state" 2>/dev/null) || s=none
			echo "F VI_$i ${s:-empty}"
		done
		# "socket NAME STATE SEQ", "dbus NAME STATE SEQ", "bad ..."
		awk '{ print "C", $0 }' "$(consumer_out "$node")" 2>/dev/null
	} | awk -v n="$N" '
		# Is the space-separated list b a subsequence of a?
		function subseq(a, b,    ea, eb, na, nb, x, j) {
			na = split(a, ea, " "); nb = split(b, eb, " "); j = 1
			for (x = 1; x <= na && j <= nb; x++) if (ea[x] == eb[j]) j++
			return j > nb
		}
		function last_word(l,    w, k) { k = split(l, w, " "); return k ? w[k] : "none" }
		$1 == "E" { exp_[$2] = exp_[$2] " " $3; ecount[$2, $3]++; last[$2] = $3; next }
		$1 == "R" && ($3 == "MASTER" || $3 == "BACKUP" || $3 == "FAULT" || $3 == "STOP") {
			rcount[$2, $3]++
			if ($4 == "applied") app[$2] = app[$2] " " $3
			next }
		$1 == "F" { file[$2] = $3; next }
		$1 == "C" && $2 == "bad" { bad++; next }
		# A repeat of the state just received (a delivery made again) is a
		# duplicate, not an older state after a newer one.
		$1 == "C" {
			rx[$2]++; gcount[$2, $3, $4]++
			if (prev[$2, $3] == $4) { dup[$2]++; next }
			prev[$2, $3] = $4; got[$2, $3] = got[$2, $3] " " $4; next }
		END {
			lost = 0; order = 0; wrong = 0; total = 0
			for (k in ecount) {
				total += ecount[k]; d = ecount[k] - rcount[k]; if (d > 0) lost += d
				split(k, p, SUBSEP)
				for (s = 1; s <= 2; s++) {
					sink = s == 1 ? "socket" : "dbus"
					d = ecount[k] - gcount[sink, p[1], p[2]]; if (d > 0) clost[sink] += d
				}
			}
			for (i = 1; i <= n; i++) {
				name = "VI_" i
				# applied must be a subsequence of expected, in order
				if (!subseq(exp_[name], app[name])) order++
				if (file[name] != last[name]) wrong++
				for (s = 1; s <= 2; s++) {
					sink = s == 1 ? "socket" : "dbus"
					if (!subseq(exp_[name], got[sink, name])) corder[sink]++
					if (last_word(got[sink, name]) != last[name]) clast[sink]++
				}
			}
			printf "%d %d %d %d  %d %d %d %d %d  %d %d %d %d %d  %d\n", lost, order, wrong, total,
				rx["socket"], clost["socket"], dup["socket"], corder["socket"], clast["socket"],
				rx["dbus"], clost["dbus"], dup["dbus"], corder["dbus"], clast["dbus"], bad
		}'
}
a_stopped=0
[ "$scenario" != stop ] || a_stopped=1
read -r lost_a order_a wrong_a expected_a srx_a slost_a sdup_a sorder_a slast_a drx_a dlost_a ddup_a dorder_a dlast_a bad_a <<<"$(check_node a "$a_stopped")"
read -r lost_b order_b wrong_b expected_b srx_b slost_b sdup_b sorder_b slast_b drx_b dlost_b ddup_b dorder_b dlast_b bad_b <<<"$(check_node b 0)"
lost=$((lost_a + lost_b))
order=$((order_a + order_b))
wrong=$((wrong_a + wrong_b))
expected=$((expected_a + expected_b))
srx=$((srx_a + srx_b)) slost=$((slost_a + slost_b)) sdup=$((sdup_a + sdup_b)) sorder=$((sorder_a + sorder_b)) slast=$((slast_a + slast_b))
drx=$((drx_a + drx_b)) dlost=$((dlost_a + dlost_b)) ddup=$((ddup_a + ddup_b)) dorder=$((dorder_a + dorder_b)) dlast=$((dlast_a + dlast_b))
bad=$((bad_a + bad_b))
lag="-"
[ -z "$b_ms" ] || lag=$(fmt_s $((b_ms - settle_ms)))
echo "$scenario $variant: keepalived made $expected_a transitions on a, $expected_b on b; settle $(fmt_s "$settle_ms") s, b files $(fmt_s "$b_ms") s, all files $(fmt_s "$files_ms") s; lost a/b $lost_a/$lost_b, out of order a/b $order_a/$order_b, wrong files a/b $wrong_a/$wrong_b"
echo "$scenario $variant: socket listener a/b: received $srx_a/$srx_b, lost $slost_a/$slost_b, repeated $sdup_a/$sdup_b, out of order $sorder_a/$sorder_b, last not final $slast_a/$slast_b; D-Bus subscriber a/b: received $drx_a/$drx_b, lost $dlost_a/$dlost_b, repeated $ddup_a/$ddup_b, out of order $dorder_a/$dorder_b, last not final $dlast_a/$dlast_b; unreadable $bad"
# preload: per instance, from keepalived's fork of the notify that made its
# last transition (the hook's sequence is CLOCK_REALTIME at that fork, in
# us) until its state file was written (its mtime): the target's "state
# file right within 2 s of keepalived's own transition", measured exactly.
if [ "$variant" = preload ]; then
	for node in a b; do
		sd=$(kn_state_dir "$node")
		sed -n 's/.*"type":"transition".*"name":"\(VI_[0-9]*\)".*"sequence":\([0-9]*\).*"outcome":"applied".*/\1 \2/p' \
			"$sd/journal.jsonl" | awk '{ last[$1] = $2 } END { for (k in last) print k, last[k] }' |
			while read -r name seq; do
				m=$(stat -c %.6Y "$sd/$name.state" 2>/dev/null) || continue
				echo $((${m/./} - seq))
			done | sort -n | awk -v s="$scenario" -v n="$node" 'NF { v[++c] = $1 }
				END { if (c) printf "%s preload: node %s, keepalived'"'"'s fork of each instance'"'"'s last notify until its state file: median %.2f s, p90 %.2f s, max %.2f s (%d instances)\n",
					s, n, v[int((c + 1) / 2)] / 1e6, v[int(c * 0.9 + 0.5)] / 1e6, v[c] / 1e6, c }'
	done
fi
if ((bad)); then
	grep -h '^bad' "$(consumer_out a)" "$(consumer_out b)" | sort | uniq -c | sed "s/^/$scenario $variant: consumer: /"
fi
if ((lost)) && [ "$variant" = fifo ]; then
	# When the reader stopped reading, against when keepalived stopped.
	for node in a b; do
		grep -h 'signal .* received\|reader exiting' "$(kn_kanotify_log "$node")" 2>/dev/null | sed "s/^/$variant: node $node reader: /"
	done
	grep -h 'Stopping\|Stopped - used' "$(kn_ka_log a)" | sed "s/^/$variant: node a keepalived: /"
fi
if [ "$variant" != shell ] && ((slost + dlost)); then
	# Why kanotify did not deliver: its own journal's delivery outcomes.
	for node in a b; do
		sed -n 's/.*"type":"delivery".*"sink":"\([a-z-]*\)".*"state":"\([A-Z_]*\)".*"outcome":"\([a-z]*\)".*/\1 \2 \3/p' "$(kn_state_dir "$node")/journal.jsonl" 2>/dev/null |
			sort | uniq -c | sed "s/^/$scenario $variant: node $node journal deliveries: /"
		find "$(kn_state_dir "$node")/pending" -type f 2>/dev/null | wc -l | sed "s/^/$scenario $variant: node $node pending deliveries left: /"
	done
fi
# keepalived starts every script with PR_SET_PDEATHSIG = SIGTERM (lib/notify.c):
# STOP notifies still running when a's VRRP process exits are terminated.
echo "RESULT $scenario $variant $N $(fmt_s "$settle_ms") $(fmt_s "$b_ms") $(fmt_s "$files_ms") $lag $lost $order $wrong $cpu $per $peak $srx $expected $slost $sdup $sorder $slast $drx $dlost $ddup $dorder $dlast $bad"
if ((CHECK)); then
	# At least BACKUP, MASTER (and STOP when stopped) per instance on a and
	# BACKUP, MASTER on b: fewer means keepalived's log was not read, and
	# nothing was checked.
	((expected_a >= (2 + a_stopped) * N && expected_b >= 2 * N)) || fail "only $expected_a/$expected_b transitions found in keepalived's logs"
	[ -n "$files_ms" ] || fail "not every state file was right"
	((wrong == 0)) || fail "$wrong state files do not hold their instance's last state"
	((slast == 0)) || fail "$slast instances' last message at the socket listener is not their final state"
	((bad == 0)) || fail "$bad messages the consumers could not read"
	case $variant in
	argv | fifo | preload) # argv: its instances' addresses are configured
		((lost == 0)) || fail "$lost transitions lost"
		((order == 0)) || fail "$order instances with transitions applied out of order"
		((slost == 0)) || fail "$slost transitions never reached the socket listener"
		((sorder == 0)) || fail "$sorder instances' messages reached the socket listener out of order" ;;
	esac
	echo "PASS: $scenario, $variant, N=$N: every state file right, lost $lost, out of order $order; socket listener: lost $slost, out of order $sorder, last wrong $slast; D-Bus (not checked): lost $dlost, out of order $dorder, last wrong $dlast"
fi
exit 0
