# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034  # the KN_ globals are read by the sourcing scripts
#
# Shared by scripts/demo.sh and tests/e2e/failover.sh: a two-node VRRP
# set-up, each node a network namespace running its own keepalived, joined by
# a veth pair. Nothing is created in the caller's namespace: both veth ends
# are created directly inside their namespaces, so VRRP adverts and ARP never
# leave them.
#
#   node a: namespace kanotify-<pid>-a, kn-a 192.0.2.1/24, priority 150,
#           generic `notify "KANOTIFY --state-dir DIR"` (argv front-end)
#   node b: namespace kanotify-<pid>-b, kn-b 192.0.2.2/24, priority 100,
#           vrrp_notify_fifo + vrrp_notify_fifo_script "KANOTIFY fifo ..."
#   VIP 192.0.2.100/24 (TEST-NET-1), vrrp_instance VI_1, virtual_router_id 51
#
# Usage (the caller sets its own shell options):
#   source scripts/lib/netns.sh
#   kn_init                     # run dir, names, EXIT trap -> kn_cleanup
#   kn_prepare_binary PATH      # sets KN_BIN
#   kn_setup_netns && kn_write_configs && kn_start_keepalived a
#   kn_wait_content "$(kn_state_file a)" MASTER 10000
#   ...
# Set KN_OBSERVER=1 before kn_init for a third namespace, c, on the same
# segment: a bridge br0 in c joins kn-a and kn-b (veth peers kc-a, kc-b),
# and c captures what the nodes announce on it. Each node's kanotify gets
# --config with its directory's kanotify.toml, written (D-Bus signal off)
# when the caller did not write one.
# Set KN_KEEP=1 to keep the run directory (configs, logs, journals) after
# the run; namespaces and processes are removed regardless.
# All functions return non-zero on failure with a message in KN_ERROR.

# keepalived and ip live in sbin, which a non-login root shell (or ctest
# started from one) may not have on its PATH.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH="/usr/sbin:/sbin:$PATH" ;;
esac

declare -g KN_ERROR=""
declare -g KN_ID="" KN_RUN="" KN_BIN="" KN_CLEANED=0
declare -g KN_VIP="192.0.2.100" KN_PREFIX=24 KN_VRID=51 KN_INSTANCE="VI_1"
declare -gA KN_NS=() KN_IF=() KN_ADDR=() KN_PRIO=() KN_KA_PID=() KN_NS_MADE=()

# Microseconds since the epoch, without forking (bash 5).
kn_now_us() {
	local t=${EPOCHREALTIME//[!0-9]/}
	printf '%s\n' "$t"
}

# Milliseconds elapsed since a kn_now_us value.
kn_ms_since() {
	local now
	now=$(kn_now_us)
	printf '%s\n' $(((now - $1) / 1000))
}

# "1234" ms -> "1.234 s"
kn_fmt_ms() {
	printf '%d.%03d s\n' $(($1 / 1000)) $(($1 % 1000))
}

# True while PID exists and is not a zombie.
kn_alive() {
	local pid=$1 stat
	[ -n "$pid" ] || return 1
	[ -r "/proc/$pid/stat" ] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Checks that this machine can create a network namespace at all
# (a container without CAP_SYS_ADMIN cannot). Leaves nothing behind.
kn_probe_netns() {
	local ns="kanotify-$$-probe" out
	if ! out=$(ip netns add "$ns" 2>&1); then
		KN_ERROR="ip netns add failed: ${out:-no message}"
		return 1
	fi
	ip netns del "$ns" 2>/dev/null
	return 0
}

# Creates the per-run directory and names, and installs the cleanup trap.
# Call once, before creating anything.
kn_init() {
	KN_ID=$$
	KN_RUN=$(mktemp -d "${TMPDIR:-/tmp}/kanotify-run.$KN_ID.XXXXXX") || {
		KN_ERROR="mktemp failed"
		return 1
	}
	chmod 0700 "$KN_RUN"
	KN_NS[a]="kanotify-$KN_ID-a"
	KN_NS[b]="kanotify-$KN_ID-b"
	[ "${KN_OBSERVER:-0}" != 1 ] || KN_NS[c]="kanotify-$KN_ID-c"
	KN_IF[a]="kn-a"
	KN_IF[b]="kn-b"
	KN_ADDR[a]="192.0.2.1"
	KN_ADDR[b]="192.0.2.2"
	KN_PRIO[a]=150
	KN_PRIO[b]=100
	local node
	for node in a b; do
		mkdir -p "$KN_RUN/$node/state" || return 1
	done
	trap kn_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}

kn_node_dir() { printf '%s\n' "$KN_RUN/$1"; }
kn_state_dir() { printf '%s\n' "$KN_RUN/$1/state"; }
kn_state_file() { printf '%s\n' "$KN_RUN/$1/state/$KN_INSTANCE.state"; }
kn_ka_log() { printf '%s\n' "$KN_RUN/$1/keepalived.log"; }
kn_kanotify_log() { printf '%s\n' "$KN_RUN/$1/kanotify.log"; }
kn_fifo() { printf '%s\n' "$KN_RUN/$1/notify.fifo"; }

# keepalived's rule for a script run as root with enable_script_security:
# every component of the path is owned by root, no directory is writable by
# others or by a non-root group unless it has the sticky bit, and the file is
# writable by neither.
kn_path_secure() {
	local path=$1 p uid gid mode type
	path=$(readlink -f -- "$path") || return 1
	p=$path
	while :; do
		read -r uid gid mode type < <(stat -c '%u %g %a %F' -- "$p") || return 1
		[ "$uid" = 0 ] || return 1
		mode=$((8#$mode))
		if [ "$type" != directory ] || ((!(mode & 8#1000))); then
			if ((mode & 8#002)) || { [ "$gid" != 0 ] && ((mode & 8#020)); }; then
				return 1
			fi
		fi
		[ "$p" = / ] && break
		p=$(dirname -- "$p")
	done
	return 0
}

# Sets KN_BIN to the kanotify binary keepalived will run. keepalived
# refuses (with enable_script_security) a root script anyone but root could
# replace; a binary in such a place (a user's checkout) is copied into the
# run directory, which is root's and 0700.
kn_prepare_binary() {
	local bin=$1
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		KN_ERROR="kanotify binary '$bin' is not an executable file"
		return 1
	fi
	KN_BIN=$(readlink -f -- "$bin")
	case $KN_BIN in
	*[[:space:]\"\'\\]*) ;;
	*) if kn_path_secure "$KN_BIN"; then return 0; fi ;;
	esac
	if ! { mkdir -p "$KN_RUN/bin" && cp -- "$KN_BIN" "$KN_RUN/bin/kanotify"; }; then
		KN_ERROR="cannot copy $bin into $KN_RUN/bin"
		return 1
	fi
	KN_BIN="$KN_RUN/bin/kanotify"
	chmod 0755 "$KN_BIN"
	if ! kn_path_secure "$KN_BIN"; then
		KN_ERROR="no root-only path for the kanotify binary (tried $KN_BIN); keepalived would refuse to run it"
		return 1
	fi
	echo "note: $bin is not in a root-only path; keepalived runs a copy, $KN_BIN"
}

# Two namespaces, a veth pair between them, addresses, links up (with
# KN_OBSERVER=1: each node's veth to a bridge in namespace c).
kn_setup_netns() {
	local node out
	for node in a b c; do
		[ -n "${KN_NS[$node]:-}" ] || continue
		if ! out=$(ip netns add "${KN_NS[$node]}" 2>&1); then
			KN_ERROR="ip netns add ${KN_NS[$node]}: $out"
			return 1
		fi
		KN_NS_MADE[$node]=1
	done
	if [ -n "${KN_NS[c]:-}" ]; then
		if ! out=$({
			ip -n "${KN_NS[c]}" link set lo up &&
				ip -n "${KN_NS[c]}" link add br0 type bridge &&
				for node in a b; do
					ip link add "${KN_IF[$node]}" netns "${KN_NS[$node]}" type veth \
						peer name "kc-$node" netns "${KN_NS[c]}" &&
						ip -n "${KN_NS[c]}" link set "kc-$node" master br0 &&
						ip -n "${KN_NS[c]}" link set "kc-$node" up || exit 1
				done &&
				ip -n "${KN_NS[c]}" link set br0 up
		} 2>&1); then
			KN_ERROR="creating the bridge in ${KN_NS[c]}: $out"
			return 1
		fi
	elif ! out=$(ip link add "${KN_IF[a]}" netns "${KN_NS[a]}" type veth \
		peer name "${KN_IF[b]}" netns "${KN_NS[b]}" 2>&1); then
		KN_ERROR="creating the veth pair: $out"
		return 1
	fi
	for node in a b; do
		if ! out=$({
			ip -n "${KN_NS[$node]}" link set lo up &&
				ip -n "${KN_NS[$node]}" addr add "${KN_ADDR[$node]}/$KN_PREFIX" dev "${KN_IF[$node]}" &&
				ip -n "${KN_NS[$node]}" link set "${KN_IF[$node]}" up
		} 2>&1); then
			KN_ERROR="configuring ${KN_NS[$node]}: $out"
			return 1
		fi
	done
}

# Writes a/keepalived.conf (argv notify) and b/keepalived.conf (FIFO).
kn_write_configs() {
	local node conf notify_line global_extra config_flag
	[ -n "$KN_BIN" ] || {
		KN_ERROR="kn_prepare_binary was not called"
		return 1
	}
	for node in a b; do
		conf="$KN_RUN/$node/keepalived.conf"
		# Always the run's own configuration, never the machine's
		# /etc/kanotify; by default no D-Bus signal on the machine's bus.
		if [ ! -f "$KN_RUN/$node/kanotify.toml" ]; then
			printf '[dbus]\nsignal = false\n' >"$KN_RUN/$node/kanotify.toml" || return 1
		fi
		config_flag=" --config $KN_RUN/$node/kanotify.toml"
		if [ "$node" = a ]; then
			global_extra=""
			notify_line="    notify \"$KN_BIN$config_flag --state-dir $(kn_state_dir a) --log-file $(kn_kanotify_log a)\""
		else
			global_extra="    vrrp_notify_fifo $(kn_fifo b)
    vrrp_notify_fifo_script \"$KN_BIN fifo$config_flag --state-dir $(kn_state_dir b) --log-file $(kn_kanotify_log b)\""
			notify_line=""
		fi
		cat >"$conf" <<EOF || return 1
# Generated by kanotify scripts/lib/netns.sh (run $KN_ID), node $node.
global_defs {
    router_id kanotify_$node
    # Scripts run as root, and keepalived checks they are root-only.
    script_user root
    enable_script_security
$global_extra
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
$notify_line
}
EOF
	done
}

# Starts keepalived (VRRP only, no fork, logging to its log file) inside the
# node's namespace with pid files in the node's run directory, so that
# several keepalived run side by side. Returns once its VRRP child is up.
kn_start_keepalived() {
	local node=$1 dir pid waited=0
	dir="$KN_RUN/$node"
	if kn_alive "${KN_KA_PID[$node]:-}"; then
		KN_ERROR="keepalived of node $node already runs"
		return 1
	fi
	rm -f "$dir/keepalived.pid" "$dir/vrrp.pid" "$dir/checkers.pid"
	# `ip netns exec` execs keepalived, so $! is keepalived's main pid.
	ip netns exec "${KN_NS[$node]}" keepalived \
		--dont-fork --log-console --log-detail --no-syslog --vrrp \
		--use-file "$dir/keepalived.conf" \
		--pid "$dir/keepalived.pid" \
		--vrrp_pid "$dir/vrrp.pid" \
		--checkers_pid "$dir/checkers.pid" \
		</dev/null >>"$dir/keepalived.log" 2>&1 &
	pid=$!
	KN_KA_PID[$node]=$pid
	# The VRRP child writes its pid file once it has read its configuration.
	while [ ! -s "$dir/vrrp.pid" ]; do
		if ! kn_alive "$pid"; then
			KN_ERROR="keepalived of node $node exited at start-up (see $dir/keepalived.log)"
			return 1
		fi
		if ((waited >= 5000)); then
			KN_ERROR="keepalived of node $node did not start its VRRP process within 5 s"
			return 1
		fi
		sleep 0.05
		waited=$((waited + 50))
	done
}

# The pid of node's VRRP child process (from its pid file), or nothing.
kn_vrrp_pid() {
	local pid=""
	[ -r "$KN_RUN/$1/vrrp.pid" ] && read -r pid <"$KN_RUN/$1/vrrp.pid"
	printf '%s\n' "$pid"
}

# Sends SIGTERM to node's keepalived main process (what `systemctl stop`
# does) and does not wait.
kn_signal_keepalived() {
	local node=$1 pid=${KN_KA_PID[$1]:-}
	if ! kn_alive "$pid"; then
		KN_ERROR="keepalived of node $node is not running"
		return 1
	fi
	kill -TERM "$pid"
}

# Waits until PID has exited, at most TIMEOUT_MS.
kn_wait_exit() {
	local pid=$1 timeout=$2 waited=0
	while kn_alive "$pid"; do
		if ((waited >= timeout)); then
			KN_ERROR="process $pid still runs after $timeout ms"
			return 1
		fi
		sleep 0.05
		waited=$((waited + 50))
	done
	wait "$pid" 2>/dev/null
	return 0
}

# SIGTERM to node's keepalived, then waits for it (and its VRRP child) to
# exit, at most TIMEOUT_MS (default 5000).
kn_stop_keepalived() {
	local node=$1 timeout=${2:-5000} vpid
	vpid=$(kn_vrrp_pid "$node")
	kn_signal_keepalived "$node" || return 1
	kn_wait_exit "${KN_KA_PID[$node]}" "$timeout" || {
		KN_ERROR="keepalived of node $node did not exit within $timeout ms of SIGTERM"
		return 1
	}
	[ -z "$vpid" ] || kn_wait_exit "$vpid" 1000 || {
		KN_ERROR="the VRRP process of node $node outlived its parent"
		return 1
	}
}

# Sets KN_CONTENT to the exact content of FILE, trailing newlines included
# (empty if it cannot be read).
kn_read_exact() {
	KN_CONTENT=$(cat -- "$1" 2>/dev/null && printf x) || KN_CONTENT=x
	KN_CONTENT=${KN_CONTENT%x}
}

# Polls FILE every 50 ms until its content is exactly EXPECTED followed by a
# newline, at most TIMEOUT_MS. Sets KN_WAITED_MS to the time waited and, on a
# timeout, KN_SEEN to what was last found (shell-quoted, so that a missing or
# extra newline shows).
kn_wait_content() {
	local file=$1 expected=$2 timeout=$3 start c
	start=$(kn_now_us)
	while :; do
		kn_read_exact "$file"
		c=$KN_CONTENT
		KN_WAITED_MS=$(kn_ms_since "$start")
		if [ "$c" = "$expected"$'\n' ]; then
			KN_SEEN=$expected
			return 0
		fi
		if ((KN_WAITED_MS >= timeout)); then
			if [ -e "$file" ]; then KN_SEEN="content $(printf '%q' "$c")"; else KN_SEEN="no file $file"; fi
			KN_ERROR="$file: expected '$expected' within $timeout ms, found '$KN_SEEN'"
			return 1
		fi
		sleep 0.05
	done
}

# Polls until the VIP is (want=1) or is not (want=0) on node's interface.
kn_wait_vip() {
	local node=$1 want=$2 timeout=$3 waited=0 have
	while :; do
		have=0
		ip -n "${KN_NS[$node]}" -4 -o addr show dev "${KN_IF[$node]}" 2>/dev/null |
			grep -q " $KN_VIP/" && have=1
		[ "$have" = "$want" ] && return 0
		if ((waited >= timeout)); then
			KN_ERROR="VIP $KN_VIP on ${KN_IF[$node]} of node $node: expected $([ "$want" = 1 ] && echo present || echo absent) within $timeout ms, it is not"
			return 1
		fi
		sleep 0.05
		waited=$((waited + 50))
	done
}

# True if keepalived of node logged that its notify FIFO script (the
# kanotify FIFO reader) exited. keepalived never restarts it, so every later
# transition of that node goes unrecorded.
kn_fifo_reader_died() {
	grep -q 'notify fifo script terminated' "$(kn_ka_log "$1")" 2>/dev/null
}

# kanotify's own commands against a node's state directory.
kn_status() { "$KN_BIN" status --state-dir "$(kn_state_dir "$1")"; }
kn_history() {
	local node=$1
	shift
	"$KN_BIN" history --state-dir "$(kn_state_dir "$node")" "$@"
}

# Prints every log of the run (for diagnosing a failure).
kn_dump_logs() {
	local node f
	for node in a b; do
		for f in "$KN_RUN/$node/keepalived.log" "$KN_RUN/$node/kanotify.log" "$KN_RUN/$node/state/journal.jsonl"; do
			echo "----- node $node: ${f#"$KN_RUN/"} -----"
			if [ -s "$f" ]; then cat -- "$f"; else echo "(empty or missing)"; fi
		done
	done
	echo "----- end of logs -----"
}

# Stops everything this run started and removes it. Runs from the EXIT trap,
# so also after a failure or an interrupt; safe to call more than once.
kn_cleanup() {
	local rc=$? node pid pids waited ns
	((KN_CLEANED)) && return "$rc"
	KN_CLEANED=1
	set +e
	trap - INT TERM HUP
	# keepalived first, so that it can remove its VIP and run STOP notifies.
	for node in a b; do
		pid=${KN_KA_PID[$node]:-}
		kn_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for node in a b; do
		pid=${KN_KA_PID[$node]:-}
		kn_wait_exit "$pid" 3000 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	done
	# Anything still running inside our namespaces (a VRRP child whose
	# parent was killed, a notify script, the FIFO reader, a capture) is ours.
	for node in a b c; do
		((${KN_NS_MADE[$node]:-0})) || continue
		ns=${KN_NS[$node]}
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] || continue
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null
		waited=0
		while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && ((waited < 2000)); do
			sleep 0.05
			waited=$((waited + 50))
		done
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
	done
	wait 2>/dev/null
	# Deleting a namespace deletes the veth end inside it (and so its peer).
	for node in a b c; do
		((${KN_NS_MADE[$node]:-0})) || continue
		ip netns del "${KN_NS[$node]}" 2>/dev/null
	done
	if [ -n "$KN_RUN" ] && [ -d "$KN_RUN" ]; then
		if [ "${KN_KEEP:-0}" = 1 ]; then
			echo "kept the run directory $KN_RUN"
		else
			rm -rf -- "$KN_RUN"
		fi
	fi
	return "$rc"
}
