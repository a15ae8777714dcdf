#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck disable=SC2034  # the NS_ globals are read by the sourcing scripts
#
# A real systemd, booted in a container, for tests that talk to systemd over
# D-Bus on a machine that has no systemd as PID 1.
#
# A minimal Debian tree (debootstrap --variant=minbase --include=systemd,dbus)
# is built once into a cache directory and reused. Each run boots it with
#   systemd-nspawn --boot --register=no --keep-unit --private-network
# on a per-run copy-on-write view of the cache (an overlayfs mount whose
# upper layer lives in the per-run directory; a plain copy where overlayfs
# cannot be mounted), so the cache itself is never written by a boot. The
# container's system bus is reached from the host through
#   /proc/<container PID 1>/root/run/dbus/system_bus_socket
#
# Usage (the caller sets its own shell options; one container per shell):
#   source tests/e2e/lib/nspawn.sh
#   trap ns_cleanup EXIT
#   ns_probe || { echo "skipped: $NS_ERROR"; exit 77; }
#   ns_prepare_tree || fail "$NS_ERROR"
#   ns_boot "kanotify-test-$$" || fail "$NS_ERROR"
#        # or: ns_create NAME; put files under $NS_ROOT; ns_start
#   busctl --address="$NS_BUS_ADDRESS" ...
#   ns_install_unit foo.service ./foo.service
#   ns_unit_property foo.service ActiveState
#   ns_poweroff || fail "$NS_ERROR"
#
# Helpers once booted: ns_busctl ARGS (busctl on the container's bus),
# ns_reload (daemon-reload), ns_unit_path / ns_unit_property /
# ns_wait_unit_property, ns_run CMD (a command inside the container's
# namespaces, though in the caller's cgroup), ns_console_tail [N].
# Do not call ns_boot/ns_start in a command substitution or a pipeline: the
# container state lives in this shell's variables.
#
# After ns_start:
#   NS_BUS_ADDRESS  unix:path=/proc/<leader>/root/run/dbus/system_bus_socket
#   NS_ROOT         the container's root directory as the host sees it
#   NS_LEADER       host pid of the container's PID 1 (systemd)
#   NS_PID          host pid of systemd-nspawn
#   NS_LOG          the container's console (systemd's boot messages)
#
# Settings (environment, all optional):
#   NS_CACHE            cached tree, default
#                       /var/cache/kanotify-test/debian-bookworm-systemd
#   NS_SUITE            Debian suite, default bookworm
#   NS_INCLUDE          packages added to minbase, default systemd,dbus
#   NS_MIRROR           Debian mirror URL; default: read at run time from the
#                       machine's apt sources (one-line and deb822 formats)
#   NS_RUN_BASE         per-run directories, default /var/tmp/kanotify-nspawn
#   NS_STORAGE          auto (overlayfs, else copy), overlay or copy
#   NS_BOOT_TIMEOUT     seconds to wait for the booted system, default 60
#   NS_POWEROFF_TIMEOUT seconds to wait for an orderly power-off, default 30
#   NS_BUILD_TIMEOUT    seconds for debootstrap (and for the cache lock), default 600
#   NS_KEEP_LOG         a path: the console log is copied there on clean-up
#
# All functions return non-zero on failure with a message in NS_ERROR.
# Progress goes to stderr as "nspawn: ..." lines.
#
# Traces: a run creates its per-run directory (NS_RUN_BASE/NAME.PID), one
# cgroup per systemd hierarchy (kanotify-nspawn.NAME.PID at the hierarchy's
# top, so that nspawn's payload/ and supervisor/ sub-cgroups of parallel runs
# never meet) and nspawn's /run/systemd/nspawn/*/NAME entries. ns_poweroff
# and ns_cleanup remove them all; a run that was killed before it could
# clean up is cleaned by the next run (ns_sweep: its container is killed,
# its mount, cgroups and directory removed).

# debootstrap lives in sbin, which a non-login root shell may not have.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH="/usr/sbin:/sbin:$PATH" ;;
esac

declare -g NS_ERROR=""
declare -g NS_CACHE=${NS_CACHE:-/var/cache/kanotify-test/debian-bookworm-systemd}
declare -g NS_SUITE=${NS_SUITE:-bookworm}
declare -g NS_INCLUDE=${NS_INCLUDE:-systemd,dbus}
declare -g NS_MIRROR=${NS_MIRROR:-}
declare -g NS_RUN_BASE=${NS_RUN_BASE:-/var/tmp/kanotify-nspawn}
declare -g NS_STORAGE=${NS_STORAGE:-auto}
declare -g NS_BOOT_TIMEOUT=${NS_BOOT_TIMEOUT:-60}
declare -g NS_POWEROFF_TIMEOUT=${NS_POWEROFF_TIMEOUT:-30}
declare -g NS_BUILD_TIMEOUT=${NS_BUILD_TIMEOUT:-600}
declare -g NS_KEEP_LOG=${NS_KEEP_LOG:-}
# Per container (one per shell).
declare -g NS_OWNER="" NS_NAME="" NS_RUN="" NS_ROOT="" NS_LOG="" NS_MODE=""
declare -g NS_PID="" NS_LEADER="" NS_BUS_ADDRESS=""
declare -g NS_CACHE_LOCK_FD=""
declare -ga NS_CGROUPS=()
# Timings (ms) of the last ns_prepare_tree / ns_start / ns_poweroff.
declare -g NS_BUILD_MS="" NS_BOOT_MS="" NS_POWEROFF_MS=""

# The recipe of the cached tree: a change rebuilds it.
ns__recipe() {
	printf 'kanotify-nspawn-tree 1\nsuite %s\nvariant minbase\ninclude %s\narch %s\n' \
		"$NS_SUITE" "$NS_INCLUDE" "$(dpkg --print-architecture 2>/dev/null || uname -m)"
}

ns__log() { printf 'nspawn: %s\n' "$*" >&2; }

ns__now_us() {
	local t=${EPOCHREALTIME//[!0-9]/}
	printf '%s\n' "$t"
}

ns__ms_since() {
	local now
	now=$(ns__now_us)
	printf '%s\n' $(((now - $1) / 1000))
}

ns_fmt_ms() {
	printf '%d.%03d s\n' $(($1 / 1000)) $(($1 % 1000))
}

# Field 22 of /proc/PID/stat: start time in clock ticks since boot. With the
# pid, it names a process unambiguously (pids are reused).
ns__starttime() {
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) }
	# shellcheck disable=SC2086  # split the fields on purpose
	set -- $rest
	[ $# -ge 20 ] || return 1
	printf '%s\n' "${20}"
}

# True while PID exists and is not a zombie; with a second argument, only
# if its start time is still that one (not a reused pid).
ns__alive() {
	local pid=$1 start=${2:-} stat rest
	[ -n "$pid" ] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	rest=${stat##*) }
	[ "${rest%% *}" != Z ] || return 1
	[ -z "$start" ] || [ "$(ns__starttime "$pid")" = "$start" ]
}

# Waits (bounded, ms) for PID to be gone; reaps it if it is our child.
ns__wait_gone() {
	local pid=$1 timeout_ms=$2 t0
	t0=$(ns__now_us)
	while ns__alive "$pid"; do
		[ "$(ns__ms_since "$t0")" -lt "$timeout_ms" ] || return 1
		sleep 0.05
	done
	wait "$pid" 2>/dev/null
	return 0
}

# The container's PID 1 as the host sees it: the child of systemd-nspawn
# that is PID 1 in its own pid namespace (nspawn's short-lived intermediate
# child, present during start-up, is not).
ns__find_leader() {
	local nspawn=$1 c kids="" d stat rest ppid nspid
	if [ -r "/proc/$nspawn/task/$nspawn/children" ]; then
		kids=$(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null)
	else
		for d in /proc/[0-9]*; do
			stat=$(cat "$d/stat" 2>/dev/null) || continue
			rest=${stat##*) }
			rest=${rest#* }
			ppid=${rest%% *}
			[ "$ppid" = "$nspawn" ] && kids+=" ${d#/proc/}"
		done
	fi
	for c in $kids; do
		nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' "/proc/$c/status" 2>/dev/null) || continue
		# "4301 1": host pid, then pid in the container's namespace.
		if [ "${nspid##*[[:space:]]}" != 1 ] || [ "$nspid" = 1 ]; then continue; fi
		printf '%s\n' "$c"
		return 0
	done
	return 1
}

# Unmounts everything mounted at or below DIR, deepest first.
ns__umount_below() {
	local dir=$1 m i
	local -a mounts=()
	dir=$(realpath -m "$dir")
	while read -r _ _ _ _ m _; do
		m=$(printf '%b' "$m") # mountinfo escapes spaces as \040
		case "$m" in
		"$dir" | "$dir"/*) mounts+=("$m") ;;
		esac
	done </proc/self/mountinfo
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null
	done
	return 0
}

# Removes DIR without ever crossing into a file system mounted below it.
ns__remove_tree() {
	local dir=$1
	[ -n "$dir" ] && [ "$dir" != / ] || return 1
	[ -e "$dir" ] || return 0
	ns__umount_below "$dir"
	rm -rf --one-file-system -- "$dir"
	[ ! -e "$dir" ]
}

# The cgroup hierarchies systemd-nspawn places itself in: every cgroup2
# mount and the cgroup v1 name=systemd hierarchy. Prints mount points.
ns__cgroup_mounts() {
	local line mnt rest fstype super
	while read -r line; do
		mnt=$(printf '%s' "$line" | cut -d' ' -f5)
		rest=${line#* - }
		fstype=${rest%% *}
		super=${rest##* }
		case "$fstype" in
		cgroup2) printf '%b\n' "$mnt" ;;
		cgroup) case ",$super," in *,name=systemd,*) printf '%b\n' "$mnt" ;; esac ;;
		esac
	done </proc/self/mountinfo | sort -u
}

# Which cgroup layout this machine has, for messages: unified, hybrid,
# legacy or none.
ns__cgroup_layout() {
	local fs
	fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null) || {
		echo none
		return
	}
	if [ "$fs" = cgroup2fs ]; then
		echo unified
	elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
		[ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ]; then
		echo hybrid
	elif [ "$(stat -fc %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ]; then
		echo legacy
	else
		echo none
	fi
}

# Creates cgroup NAME in every hierarchy of ns__cgroup_mounts, into the
# array NS__CG_MADE. The process that then writes its pid into each one's
# cgroup.procs (ns__cgroup_enter) gives systemd-nspawn a cgroup of its own:
# with --keep-unit it puts its payload/ and supervisor/ below it.
declare -ga NS__CG_MADE=()
ns__cgroup_create() {
	local name=$1 mnt out
	NS__CG_MADE=()
	while read -r mnt; do
		[ -n "$mnt" ] || continue
		if ! out=$(mkdir -p -- "$mnt/$name" 2>&1); then
			NS_ERROR="cannot create cgroup $mnt/$name: ${out:-no message}"
			ns__cgroup_remove "${NS__CG_MADE[@]}"
			NS__CG_MADE=()
			return 1
		fi
		NS__CG_MADE+=("$mnt/$name")
	done < <(ns__cgroup_mounts)
	if [ ${#NS__CG_MADE[@]} -eq 0 ]; then
		NS_ERROR="no cgroup2 and no name=systemd cgroup v1 hierarchy is mounted (cgroup layout: $(ns__cgroup_layout)); systemd in a container needs one"
		return 1
	fi
	return 0
}

# Moves the calling (sub)shell into the cgroups given.
ns__cgroup_enter() {
	local cg
	for cg in "$@"; do
		echo "$BASHPID" >"$cg/cgroup.procs" || return 1
	done
}

# Kills whatever is left in the cgroups given, then removes them, deepest
# first. Returns non-zero if one could not be removed.
ns__cgroup_remove() {
	local cg d p ok=0 try
	for cg in "$@"; do
		case "${cg##*/}" in kanotify-nspawn.*) ;; *) continue ;; esac
		[ -d "$cg" ] || continue
		for try in 1 2 3 4 5 6 7 8 9 10; do
			local left=0
			while read -r d; do
				while read -r p; do
					[ -n "$p" ] || continue
					kill -9 "$p" 2>/dev/null
					left=1
				done <"$d/cgroup.procs"
			done < <(find "$cg" -depth -type d 2>/dev/null)
			[ "$left" = 0 ] && break
			sleep 0.1
		done
		# A cgroup whose last task is still exiting refuses rmdir (EBUSY)
		# for a moment.
		for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
			find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$cg" ] || break
			sleep 0.1
		done
		[ -d "$cg" ] && ok=1
	done
	return $ok
}

# The URL of a Debian archive mirror from the machine's apt configuration,
# and, tab-separated, the keyring its entry names (may be empty). Reads
# /etc/apt/sources.list and sources.list.d/*.list (one-line format) and
# sources.list.d/*.sources (deb822). Prefers an entry whose Release file
# apt has fetched says "Origin: Debian", then one for NS_SUITE itself, then
# one whose URI ends in /debian; the entry must carry the main component,
# and suites with a dash or slash (bookworm-security, -updates) never count.
# (NS__APT_DIR and NS__APT_LISTS replace /etc/apt and /var/lib/apt/lists,
# for testing this parser.)
ns_apt_mirror() {
	local f entries etc=${NS__APT_DIR:-/etc/apt} lists=${NS__APT_LISTS:-/var/lib/apt/lists}
	local -a files=()
	[ -f "$etc/sources.list" ] && files+=("$etc/sources.list")
	for f in "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
		[ -f "$f" ] && files+=("$f")
	done
	# One line per (uri, suite) of a "deb" entry with "main":
	#   uri <TAB> suite <TAB> keyring
	entries=$(
		for f in "${files[@]}"; do
			case "$f" in
			*.sources)
				awk '
				function flush() {
					if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && tolower(enabled) != "no") {
						n = split(uris, u, " "); m = split(suites, s, " ")
						for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
							printf "%s\t%s\t%s\n", u[i], s[j], signed
					}
					types = uris = suites = comps = signed = enabled = ""; last = ""
				}
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { flush(); next }
				/^[ \t]/ { next }  # continuation (an inline key, say)
				{
					k = tolower($0); sub(/:.*/, "", k)
					v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
					if (k == "types") types = v
					else if (k == "uris") uris = v
					else if (k == "suites") suites = v
					else if (k == "components") comps = v
					else if (k == "signed-by") signed = (v ~ /^\//) ? v : ""
					else if (k == "enabled") enabled = v
				}
				END { flush() }' "$f"
				;;
			*)
				awk '
				/^[ \t]*#/ || /^[ \t]*$/ { next }
				{
					line = $0; sub(/#.*/, "", line)
					n = split(line, w, /[ \t]+/); i = 1
					while (i <= n && w[i] == "") i++
					if (w[i] != "deb") next
					i++; signed = ""
					if (substr(w[i], 1, 1) == "[") {
						opts = ""
						while (i <= n) { opts = opts " " w[i]; if (w[i] ~ /\]$/) { i++; break } i++ }
						if (match(opts, /signed-by=[^ ]+/)) {
							signed = substr(opts, RSTART + 10, RLENGTH - 10)
							sub(/\]$/, "", signed)
						}
					}
					uri = w[i]; suite = w[i + 1]; main = 0
					for (j = i + 2; j <= n; j++) if (w[j] == "main") main = 1
					if (main && uri != "" && suite != "") printf "%s\t%s\t%s\n", uri, suite, signed
				}' "$f"
				;;
			esac
		done
	)
	local uri suite keyring best="" best_score=-1 score list
	while IFS=$'\t' read -r uri suite keyring; do
		[ -n "$uri" ] || continue
		case "$uri" in
		http://* | https://* | file:/* | ftp://*) ;;
		*) continue ;; # cdrom:, mirror+file:, tor+: debootstrap cannot use them
		esac
		# A suite with a dash (bookworm-security, -updates, cloud-sdk-bookworm)
		# or a slash is not a whole distribution.
		case "$suite" in *-* | */*) continue ;; esac
		score=0
		# apt's list file name for the entry: the URI without its scheme,
		# '/' turned into '_'.
		list=${uri#*://}
		list=${list%/}
		list="$lists/${list//\//_}_dists_${suite//\//_}_"
		if grep -qs '^Origin: Debian$' "${list}InRelease" "${list}Release"; then
			score=$((score + 4))
		fi
		[ "$suite" = "$NS_SUITE" ] && score=$((score + 2))
		[ $score -gt 0 ] || continue
		case "${uri%/}" in */debian) score=$((score + 1)) ;; esac
		if [ $score -gt $best_score ]; then
			best_score=$score
			best=$(printf '%s\t%s' "${uri%/}" "$keyring")
		fi
	done <<<"$entries"
	if [ -z "$best" ]; then
		NS_ERROR="no Debian mirror found in the apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list, *.sources); set NS_MIRROR"
		return 1
	fi
	printf '%s\n' "$best"
}

# Can this machine run systemd-nspawn --boot? Checks root, the programs,
# the cgroup layout, and runs a throw-away container (a tiny tree with the
# host's /usr bound read-only) the way ns_start runs the real one, but
# without --boot. Leaves nothing behind. Sets NS_ERROR on failure.
ns_probe() {
	local p out rc tmp id pid t0 leader me cap
	local -a cg=()
	NS_ERROR=""
	if [ "$(id -u)" != 0 ]; then
		NS_ERROR="needs root (systemd-nspawn, mounts, cgroups)"
		return 1
	fi
	ns_sweep
	for p in systemd-nspawn busctl flock nsenter mount umount; do
		if ! command -v "$p" >/dev/null 2>&1; then
			case "$p" in
			systemd-nspawn) NS_ERROR="systemd-nspawn is not installed (Debian package systemd-container)" ;;
			busctl) NS_ERROR="busctl is not installed (Debian package systemd)" ;;
			*) NS_ERROR="$p is not installed (Debian package util-linux / mount)" ;;
			esac
			return 1
		fi
	done
	if ! ns_tree_ok && ! command -v debootstrap >/dev/null 2>&1; then
		NS_ERROR="debootstrap is not installed (Debian package debootstrap) and the cached tree $NS_CACHE is not built"
		return 1
	fi
	# CAP_SYS_ADMIN (bit 21): namespaces and mounts. Missing in an
	# unprivileged container.
	cap=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
	if [ -n "$cap" ] && (((0x$cap >> 21 & 1) == 0)); then
		NS_ERROR="no CAP_SYS_ADMIN in the effective capability set (CapEff $cap; an unprivileged container?): systemd-nspawn needs it for namespaces and mounts"
		return 1
	fi
	for p in pid mnt net uts ipc cgroup; do
		if [ ! -e "/proc/self/ns/$p" ]; then
			NS_ERROR="the kernel has no $p namespaces (/proc/self/ns/$p is missing)"
			return 1
		fi
	done
	me=$BASHPID
	id="kanotify-nspawn.probe.$me"
	if ! ns__cgroup_create "$id"; then
		NS_ERROR="cgroups unusable for a container: $NS_ERROR"
		return 1
	fi
	cg=("${NS__CG_MADE[@]}")
	# Under NS_RUN_BASE with an owner record, so that ns_sweep removes it
	# should this shell be killed meanwhile.
	tmp="$NS_RUN_BASE/probe.$me"
	if ! mkdir -p "$NS_RUN_BASE" || ! mkdir -p "$tmp/root/usr" "$tmp/root/etc"; then
		ns__cgroup_remove "${cg[@]}"
		NS_ERROR="cannot create $tmp"
		return 1
	fi
	{
		printf 'owner %s %s\nname kanotify-probe-%s\n' "$me" "$(ns__starttime "$me")" "$me"
		printf 'cgroup %s\n' "${cg[@]}"
	} >"$tmp/owner"
	for p in bin sbin lib lib32 lib64 libx32; do
		[ -e "/usr/$p" ] && ln -s "usr/$p" "$tmp/root/$p"
	done
	# Not under timeout(1): nothing but nspawn may sit in its cgroup.
	(
		ns__cgroup_enter "${cg[@]}" || {
			echo "cannot move into cgroups ${cg[*]}"
			exit 125
		}
		# nspawn picks the container's cgroup layout from the systemd it
		# finds in the tree, and this one has none (its /usr is bound in
		# later): on a unified-only host it would fall back to a legacy
		# name=systemd hierarchy, mounted privately and left with a cgroup
		# of ours in it. Say what the host has.
		if [ "$(ns__cgroup_layout)" = unified ]; then
			export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
		fi
		exec systemd-nspawn --quiet --register=no --keep-unit --private-network \
			--link-journal=no --console=pipe --bind-ro=/usr -D "$tmp/root" \
			--machine "kanotify-probe-$me" /usr/bin/sh -c 'echo nspawn-probe-ok $$'
	) </dev/null >"$tmp/out" 2>&1 &
	pid=$!
	t0=$(ns__now_us)
	while ns__alive "$pid" && [ "$(ns__ms_since "$t0")" -lt 30000 ]; do
		sleep 0.05
	done
	if ns__alive "$pid"; then
		leader=$(ns__find_leader "$pid") && kill -9 "$leader" 2>/dev/null
		kill -9 "$pid" 2>/dev/null
		echo "(no answer within 30 s; killed)" >>"$tmp/out"
	fi
	wait "$pid"
	rc=$?
	out=$(cat "$tmp/out" 2>/dev/null)
	ns__cgroup_remove "${cg[@]}"
	ns__remove_tree "$tmp"
	rm -rf "/run/systemd/nspawn/propagate/kanotify-probe-$me" \
		"/run/systemd/nspawn/unix-export/kanotify-probe-$me" 2>/dev/null
	if [ $rc -ne 0 ] || ! grep -q '^nspawn-probe-ok 1$' <<<"$out"; then
		out=$(grep -v '^nspawn-probe-ok' <<<"$out" | tail -n 5 | tr '\n' ' ')
		NS_ERROR="systemd-nspawn cannot start a container here (exit $rc, cgroup layout $(ns__cgroup_layout)): ${out:-no message}"
		return 1
	fi
	return 0
}

# True if the cached tree is complete: built by a debootstrap that finished
# (it removes its own debootstrap/ directory last), for this recipe, with
# systemd and dbus installed and bootable.
ns_tree_ok() {
	local t=$NS_CACHE p
	[ -d "$t" ] && [ ! -e "$t/debootstrap" ] || return 1
	[ -f "$NS_CACHE.recipe" ] && [ "$(cat "$NS_CACHE.recipe")" = "$(ns__recipe)" ] || return 1
	[ -x "$t/usr/lib/systemd/systemd" ] || [ -x "$t/lib/systemd/systemd" ] || return 1
	[ -x "$t/usr/bin/dbus-daemon" ] || return 1
	grep -qs "^VERSION_CODENAME=$NS_SUITE\$" "$t/usr/lib/os-release" "$t/etc/os-release" || return 1
	for p in ${NS_INCLUDE//,/ }; do
		awk -v p="$p" '
			$0 == "Package: " p { inpkg = 1; next }
			/^Package: / { inpkg = 0 }
			inpkg && $0 == "Status: install ok installed" { found = 1 }
			END { exit !found }' "$t/var/lib/dpkg/status" 2>/dev/null || return 1
	done
	return 0
}

# A build whose run was killed goes on (debootstrap holds the cache lock):
# if NS_CACHE.builder names a builder whose owner is gone, kill its process
# group (debootstrap runs in a session of its own) so the lock frees.
ns__kill_orphan_builder() {
	local f="$NS_CACHE.builder" key a b owner_ok=0 pgid=""
	[ -f "$f" ] || return 0
	while read -r key a b; do
		case "$key" in
		owner) ns__alive "$a" "$b" && owner_ok=1 ;;
		builder) ns__alive "$a" "$b" && pgid=$a ;;
		esac
	done <"$f"
	[ $owner_ok = 0 ] || return 0
	if [ -n "$pgid" ]; then
		ns__log "killing the debootstrap of a dead run (process group $pgid)"
		kill -TERM -- "-$pgid" 2>/dev/null
		ns__wait_gone "$pgid" 5000 || kill -KILL -- "-$pgid" 2>/dev/null
		sleep 0.5
		kill -KILL -- "-$pgid" 2>/dev/null
	fi
	rm -f "$f"
	return 0
}

# Builds the cached tree unless a complete one is there. Holds an exclusive
# lock on NS_CACHE.lock meanwhile, so parallel runs build it once; runs that
# use the tree hold the lock shared (ns_create), so it is never rebuilt
# under a running container. Builds into NS_CACHE.new.PID and renames it
# into place when complete.
ns_prepare_tree() {
	local fd t0 mirror keyring line new log rc bpid http_proxy_conf=""
	local -a opts=()
	NS_ERROR=""
	NS_BUILD_MS=0
	ns_sweep
	mkdir -p "$(dirname "$NS_CACHE")" || {
		NS_ERROR="cannot create $(dirname "$NS_CACHE")"
		return 1
	}
	exec {fd}>"$NS_CACHE.lock" || {
		NS_ERROR="cannot open $NS_CACHE.lock"
		return 1
	}
	# Shared first: a complete tree is used as it is, alongside running
	# containers (which hold the lock shared); a build holds it exclusive.
	if ! flock -n -s "$fd" && ! { ns__kill_orphan_builder && flock -n -s "$fd"; }; then
		ns__log "waiting for $NS_CACHE (another run is building it)"
		if ! flock -w "$NS_BUILD_TIMEOUT" -s "$fd"; then
			exec {fd}>&-
			NS_ERROR="timed out after ${NS_BUILD_TIMEOUT}s waiting for the lock on $NS_CACHE.lock"
			return 1
		fi
	fi
	if ns_tree_ok; then
		exec {fd}>&-
		return 0
	fi
	flock -u "$fd"
	if ! flock -n -x "$fd" && ! { ns__kill_orphan_builder && flock -n -x "$fd"; }; then
		ns__log "waiting for the lock on $NS_CACHE (another run builds or uses it)"
		if ! flock -w "$NS_BUILD_TIMEOUT" -x "$fd"; then
			exec {fd}>&-
			NS_ERROR="timed out after ${NS_BUILD_TIMEOUT}s waiting for the lock on $NS_CACHE.lock"
			return 1
		fi
	fi
	if ns_tree_ok; then # built by another run meanwhile
		exec {fd}>&-
		return 0
	fi
	t0=$(ns__now_us)
	# Leftovers of builds that were killed (we hold the lock: none is running).
	for new in "$NS_CACHE".new.*; do
		[ -e "$new" ] && ns__remove_tree "$new"
	done
	if ! command -v debootstrap >/dev/null 2>&1; then
		exec {fd}>&-
		NS_ERROR="debootstrap is not installed (Debian package debootstrap)"
		return 1
	fi
	if [ -n "$NS_MIRROR" ]; then
		mirror=$NS_MIRROR
		keyring=""
	else
		line=$(ns_apt_mirror) || {
			exec {fd}>&-
			return 1
		}
		mirror=${line%%$'\t'*}
		keyring=${line#*$'\t'}
	fi
	[ -n "$keyring" ] && [ -f "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -f "$keyring" ] && opts+=(--keyring="$keyring")
	# apt's own proxy setting, if it has one, is the way to the mirror.
	if command -v apt-config >/dev/null 2>&1; then
		eval "$(apt-config shell http_proxy_conf Acquire::http::Proxy)"
	fi
	new="$NS_CACHE.new.$$"
	log="$NS_CACHE.debootstrap.log"
	ns__log "building $NS_CACHE: debootstrap --variant=minbase --include=$NS_INCLUDE $NS_SUITE from $mirror (log: $log)"
	rm -f "$NS_CACHE.recipe"
	# In a session of its own (setsid: this background subshell is no
	# process group leader, so setsid makes its pid the group's id), so
	# that a later run can kill the whole build should this one be killed.
	(
		if [ -n "$http_proxy_conf" ] && [ "$http_proxy_conf" != DIRECT ]; then
			export http_proxy=$http_proxy_conf
		fi
		exec setsid timeout -k 10 "$NS_BUILD_TIMEOUT" debootstrap --variant=minbase \
			--include="$NS_INCLUDE" "${opts[@]}" "$NS_SUITE" "$new" "$mirror"
	) </dev/null >"$log" 2>&1 &
	bpid=$!
	printf 'owner %s %s\nbuilder %s %s\n' "$BASHPID" "$(ns__starttime "$BASHPID")" \
		"$bpid" "$(ns__starttime "$bpid")" >"$NS_CACHE.builder"
	wait "$bpid"
	rc=$?
	rm -f "$NS_CACHE.builder"
	ns__umount_below "$new" # debootstrap mounts proc and sys in the target
	if [ $rc -ne 0 ]; then
		ns__remove_tree "$new"
		exec {fd}>&-
		NS_ERROR="debootstrap failed (exit $rc$([ $rc = 124 ] && echo ", timed out after ${NS_BUILD_TIMEOUT}s")): $(grep -E '^(E|W):' "$log" | tail -n 3 | tr '\n' ' ')(log: $log)"
		return 1
	fi
	# apt's package cache is not needed to boot; drop it from the cache.
	rm -rf "$new/var/cache/apt/archives/"*.deb "$new/var/lib/apt/lists/"*_* 2>/dev/null
	if [ -e "$NS_CACHE" ]; then
		ns__remove_tree "$NS_CACHE" || {
			ns__remove_tree "$new"
			exec {fd}>&-
			NS_ERROR="cannot remove the old tree $NS_CACHE"
			return 1
		}
	fi
	mv -T "$new" "$NS_CACHE" || {
		ns__remove_tree "$new"
		exec {fd}>&-
		NS_ERROR="cannot move $new to $NS_CACHE"
		return 1
	}
	ns__recipe >"$NS_CACHE.recipe.tmp" && mv -f "$NS_CACHE.recipe.tmp" "$NS_CACHE.recipe"
	sync -f "$NS_CACHE" 2>/dev/null
	if ! ns_tree_ok; then
		exec {fd}>&-
		NS_ERROR="debootstrap finished but $NS_CACHE is incomplete (systemd, dbus or os-release missing; log: $log)"
		return 1
	fi
	NS_BUILD_MS=$(ns__ms_since "$t0")
	ns__log "built $NS_CACHE in $(ns_fmt_ms "$NS_BUILD_MS"), $(du -sh "$NS_CACHE" 2>/dev/null | cut -f1)"
	exec {fd}>&-
	return 0
}

# Writes the per-run owner record: who owns the run (pid and start time),
# and, once started, systemd-nspawn's pid and start time.
ns__write_owner() {
	{
		printf 'owner %s %s\n' "$NS_OWNER" "$(ns__starttime "$NS_OWNER")"
		printf 'name %s\n' "$NS_NAME"
		printf 'mode %s\n' "$NS_MODE"
		[ -n "$NS_PID" ] && printf 'nspawn %s %s\n' "$NS_PID" "$(ns__starttime "$NS_PID")"
		local cg
		for cg in "${NS_CGROUPS[@]}"; do printf 'cgroup %s\n' "$cg"; done
	} >"$NS_RUN/owner.tmp" && mv -f "$NS_RUN/owner.tmp" "$NS_RUN/owner"
}

# Tears down what a run left: its container (killed), the overlay mount,
# its cgroups, nspawn's /run entries and the per-run directory.
# Arguments: run dir, machine name, nspawn pid, cgroup dirs...
ns__destroy() {
	local run=$1 name=$2 pid=$3 leader devino
	shift 3
	if [ -n "$pid" ] && ns__alive "$pid"; then
		leader=$(ns__find_leader "$pid") && kill -9 "$leader" 2>/dev/null
		kill -9 "$pid" 2>/dev/null
		ns__wait_gone "$pid" 5000
	fi
	[ $# -gt 0 ] && ns__cgroup_remove "$@"
	if [ -n "$name" ]; then
		rm -rf "/run/systemd/nspawn/propagate/$name" "/run/systemd/nspawn/unix-export/$name" 2>/dev/null
	fi
	# nspawn locks the tree with /run/systemd/nspawn/locks/inode-DEV:INO
	# (of the root directory, so before the overlay goes) and removes it
	# when it exits, unless it was killed.
	if [ -n "$run" ] && devino=$(stat -c '%d:%i' "$run/root" 2>/dev/null); then
		rm -f "/run/systemd/nspawn/locks/inode-$devino"
	fi
	[ -n "$run" ] && ns__remove_tree "$run"
}

# Cleans up after runs that died without cleaning up (their owner process
# is gone): kills their container, removes their mount, cgroups and
# directory. Safe to call any time; runs whose owner lives are left alone.
ns_sweep() {
	local d key a b owner_ok name pid start fd
	local -a cgs
	[ -d "$NS_RUN_BASE" ] || return 0
	exec {fd}<"$NS_RUN_BASE" || return 0 # the directory itself is the lock
	flock -w 30 -x "$fd" || {
		exec {fd}>&-
		return 0
	}
	for d in "$NS_RUN_BASE"/*; do
		[ -d "$d" ] || continue
		if [ ! -f "$d/owner" ]; then
			# Being created right now, or its creator died at once.
			[ -n "$(find "$d" -maxdepth 0 -mmin +2 2>/dev/null)" ] && ns__destroy "$d" "" ""
			continue
		fi
		owner_ok=0 name="" pid="" start="" cgs=()
		while read -r key a b; do
			case "$key" in
			owner) ns__alive "$a" "$b" && owner_ok=1 ;;
			name) name=$a ;;
			nspawn) pid=$a start=$b ;;
			cgroup) cgs+=("$a") ;;
			esac
		done <"$d/owner"
		[ $owner_ok = 1 ] && continue
		ns__log "removing the leftovers of a dead run: $d"
		if [ -n "$pid" ] && ! ns__alive "$pid" "$start"; then
			pid="" # gone, and the number may be someone else's now
		fi
		ns__destroy "$d" "$name" "$pid" "${cgs[@]}"
	done
	exec {fd}>&-
	return 0
}

# Creates the per-run root of container NAME (a valid host name, unique
# among the containers that run at the same time: put $$ in it) and
# exports NS_ROOT, where files can be put before ns_start.
ns_create() {
	local name=$1 out
	NS_ERROR=""
	if [ -n "$NS_RUN" ]; then
		NS_ERROR="a container ($NS_NAME) is already set up in this shell"
		return 1
	fi
	if ! [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$ ]]; then
		NS_ERROR="bad machine name '$name' (letters, digits, '.', '-'; at most 64)"
		return 1
	fi
	ns_sweep
	exec {NS_CACHE_LOCK_FD}>"$NS_CACHE.lock" || {
		NS_ERROR="cannot open $NS_CACHE.lock"
		return 1
	}
	if ! flock -w "$NS_BUILD_TIMEOUT" -s "$NS_CACHE_LOCK_FD" || ! ns_tree_ok; then
		exec {NS_CACHE_LOCK_FD}>&-
		NS_CACHE_LOCK_FD=""
		NS_ERROR="the cached tree $NS_CACHE is not ready (run ns_prepare_tree first)"
		return 1
	fi
	NS_NAME=$name
	NS_OWNER=$BASHPID
	NS_RUN="$NS_RUN_BASE/$name.$NS_OWNER"
	if ! mkdir -p "$NS_RUN_BASE" || ! chmod 0700 "$NS_RUN_BASE" || ! mkdir "$NS_RUN"; then
		NS_ERROR="cannot create $NS_RUN"
		NS_RUN=""
		exec {NS_CACHE_LOCK_FD}>&-
		NS_CACHE_LOCK_FD=""
		return 1
	fi
	NS_MODE=""
	ns__write_owner
	NS_ROOT="$NS_RUN/root"
	NS_LOG="$NS_RUN/console.log"
	mkdir -p "$NS_RUN/upper" "$NS_RUN/work" "$NS_ROOT"
	if [ "$NS_STORAGE" != copy ]; then
		if out=$(mount -t overlay "kanotify-nspawn" \
			-o "lowerdir=$NS_CACHE,upperdir=$NS_RUN/upper,workdir=$NS_RUN/work" "$NS_ROOT" 2>&1); then
			NS_MODE=overlay
		elif [ "$NS_STORAGE" = overlay ]; then
			NS_ERROR="cannot mount an overlay on $NS_ROOT: ${out:-no message}"
			return 1
		fi
	fi
	if [ -z "$NS_MODE" ]; then
		rmdir "$NS_RUN/upper" "$NS_RUN/work" "$NS_ROOT"
		if ! out=$(cp -a --reflink=auto -T "$NS_CACHE" "$NS_ROOT" 2>&1); then
			NS_ERROR="cannot copy $NS_CACHE to $NS_ROOT: ${out:-no message}"
			return 1
		fi
		NS_MODE=copy
	fi
	ns__write_owner
	return 0
}

# Boots the container created by ns_create, in the background, its console
# in NS_LOG; waits (NS_BOOT_TIMEOUT) until systemd answers on the
# container's system bus with SystemState running or degraded.
ns_start() {
	local t0 sock state="" leader=""
	NS_ERROR=""
	if [ -z "$NS_RUN" ] || [ -n "$NS_PID" ]; then
		NS_ERROR="ns_start: no container created, or already started"
		return 1
	fi
	ns__cgroup_create "kanotify-nspawn.$NS_NAME.$NS_OWNER" || return 1
	NS_CGROUPS=("${NS__CG_MADE[@]}")
	ns__write_owner
	t0=$(ns__now_us)
	(
		ns__cgroup_enter "${NS_CGROUPS[@]}" || {
			echo "nspawn.sh: cannot move into cgroups ${NS_CGROUPS[*]}"
			exit 125
		}
		exec systemd-nspawn --boot --register=no --keep-unit --private-network \
			--link-journal=no --console=read-only --resolv-conf=off --timezone=off \
			--setenv=SYSTEMD_COLORS=0 -D "$NS_ROOT" --machine "$NS_NAME"
	) </dev/null >"$NS_LOG" 2>&1 &
	NS_PID=$!
	ns__write_owner
	while :; do
		if ! ns__alive "$NS_PID"; then
			wait "$NS_PID" 2>/dev/null
			NS_ERROR="systemd-nspawn exited during boot: $(tail -n 5 "$NS_LOG" | tr '\n' ' ')"
			NS_PID=""
			return 1
		fi
		if [ -z "$leader" ]; then
			leader=$(ns__find_leader "$NS_PID") || leader=""
		fi
		if [ -n "$leader" ]; then
			sock="/proc/$leader/root/run/dbus/system_bus_socket"
			if [ -S "$sock" ]; then
				state=$(busctl --address="unix:path=$sock" --timeout=3 get-property \
					org.freedesktop.systemd1 /org/freedesktop/systemd1 \
					org.freedesktop.systemd1.Manager SystemState 2>/dev/null) || state=""
				state=${state#s \"}
				state=${state%\"}
				case "$state" in
				running | degraded) break ;;
				maintenance | stopping | offline)
					NS_ERROR="systemd in the container is in state '$state': $(tail -n 5 "$NS_LOG" | tr '\n' ' ')"
					return 1
					;;
				esac
			fi
		fi
		if [ "$(ns__ms_since "$t0")" -ge $((NS_BOOT_TIMEOUT * 1000)) ]; then
			NS_ERROR="the container did not boot within ${NS_BOOT_TIMEOUT}s (leader ${leader:-not found}, SystemState '${state:-no answer}'): $(tail -n 5 "$NS_LOG" | tr '\n' ' ')"
			return 1
		fi
		sleep 0.1
	done
	NS_LEADER=$leader
	NS_BUS_ADDRESS="unix:path=$sock"
	NS_BOOT_MS=$(ns__ms_since "$t0")
	export NS_BUS_ADDRESS NS_ROOT NS_LEADER NS_PID
	if [ "$state" = degraded ]; then
		ns__log "booted degraded; failed units: $(ns_busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
			org.freedesktop.systemd1.Manager ListUnitsFiltered as 1 failed 2>/dev/null | grep -o '"[^"]*\.[a-z]*"' | head -n 5 | tr '\n' ' ')"
	fi
	return 0
}

# ns_create + ns_start.
ns_boot() {
	ns_create "$1" && ns_start
}

# busctl on the container's system bus.
ns_busctl() {
	busctl --address="$NS_BUS_ADDRESS" --timeout=30 "$@"
}

# Prints the object path of a unit (loading it if needed).
ns_unit_path() {
	local out
	out=$(ns_busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
		org.freedesktop.systemd1.Manager LoadUnit s "$1" 2>&1) || {
		NS_ERROR="LoadUnit $1: $out"
		printf 'nspawn: %s\n' "$NS_ERROR" >&2
		return 1
	}
	out=${out#o \"}
	printf '%s\n' "${out%\"}"
}

# Prints a string property of a unit (org.freedesktop.systemd1.Unit),
# unquoted: ns_unit_property foo.service ActiveState -> active
ns_unit_property() {
	local path out
	path=$(ns_unit_path "$1") || return 1
	out=$(ns_busctl get-property org.freedesktop.systemd1 "$path" \
		org.freedesktop.systemd1.Unit "$2" 2>&1) || {
		NS_ERROR="get-property $1 $2: $out"
		printf 'nspawn: %s\n' "$NS_ERROR" >&2
		return 1
	}
	out=${out#s \"}
	printf '%s\n' "${out%\"}"
}

# Waits (bounded, ms) until a unit's property has a value.
ns_wait_unit_property() {
	local unit=$1 prop=$2 want=$3 timeout_ms=$4 t0 v=""
	t0=$(ns__now_us)
	while :; do
		v=$(ns_unit_property "$unit" "$prop" 2>/dev/null) && [ "$v" = "$want" ] && return 0
		if [ "$(ns__ms_since "$t0")" -ge "$timeout_ms" ]; then
			NS_ERROR="$unit: $prop is '${v:-?}', not '$want', after ${timeout_ms} ms"
			return 1
		fi
		sleep 0.05
	done
}

# Installs unit file FILE ('-': standard input) as /etc/systemd/system/UNIT
# in the container; if it runs, reloads systemd over the bus (the call
# returns once the reload is done) and checks that the unit loaded.
ns_install_unit() {
	local unit=$1 file=$2 out state path
	NS_ERROR=""
	if [ -z "$NS_ROOT" ]; then
		NS_ERROR="ns_install_unit: no container"
		return 1
	fi
	mkdir -p "$NS_ROOT/etc/systemd/system" || return 1
	if [ "$file" = - ]; then
		cat >"$NS_ROOT/etc/systemd/system/$unit.tmp"
	else
		cat -- "$file" >"$NS_ROOT/etc/systemd/system/$unit.tmp"
	fi || {
		NS_ERROR="cannot write $NS_ROOT/etc/systemd/system/$unit"
		return 1
	}
	chmod 0644 "$NS_ROOT/etc/systemd/system/$unit.tmp"
	mv -f "$NS_ROOT/etc/systemd/system/$unit.tmp" "$NS_ROOT/etc/systemd/system/$unit" || return 1
	[ -n "$NS_BUS_ADDRESS" ] || return 0 # not booted yet: systemd reads it at boot
	ns_reload || return 1
	# LoadUnit fails for a unit that did not load (bad setting, not found),
	# with systemd's reason.
	if ! out=$(ns_busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
		org.freedesktop.systemd1.Manager LoadUnit s "$unit" 2>&1); then
		NS_ERROR="$unit did not load: $out"
		return 1
	fi
	path=${out#o \"}
	path=${path%\"}
	state=$(ns_busctl get-property org.freedesktop.systemd1 "$path" \
		org.freedesktop.systemd1.Unit LoadState 2>&1)
	if [ "$state" != 's "loaded"' ]; then
		NS_ERROR="$unit did not load: LoadState $state"
		return 1
	fi
	return 0
}

# daemon-reload over the bus; systemd replies once the reload is complete.
ns_reload() {
	local out
	out=$(busctl --address="$NS_BUS_ADDRESS" --timeout=60 call org.freedesktop.systemd1 \
		/org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Reload 2>&1) || {
		NS_ERROR="Reload: $out"
		return 1
	}
}

# Runs a command inside the running container (all its namespaces).
ns_run() {
	nsenter --target "$NS_LEADER" --mount --uts --ipc --net --pid --root --wd -- "$@"
}

# The last lines of the container's console.
ns_console_tail() {
	[ -n "$NS_LOG" ] && [ -f "$NS_LOG" ] && tail -n "${1:-20}" "$NS_LOG"
}

# Powers the container off in order (poweroff.target over the bus, else
# SIGRTMIN+4 to its systemd), waits NS_POWEROFF_TIMEOUT for systemd-nspawn
# to exit, then SIGKILL to the container's PID 1 (and to nspawn as a last
# resort); removes the
# per-run tree, cgroups and nspawn's /run entries, and checks that nothing
# is left. NS_POWEROFF_MS: how long the orderly part took.
ns_poweroff() {
	local t0 how="" ok=0 left=""
	NS_ERROR=""
	NS_POWEROFF_MS=""
	if [ -n "$NS_PID" ] && ns__alive "$NS_PID"; then
		t0=$(ns__now_us)
		if [ -n "$NS_BUS_ADDRESS" ] && busctl --address="$NS_BUS_ADDRESS" --timeout=5 call \
			org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager \
			StartUnit ss poweroff.target replace-irreversibly >/dev/null 2>&1; then
			how="poweroff.target over the bus"
		else
			[ -n "$NS_LEADER" ] || NS_LEADER=$(ns__find_leader "$NS_PID") || NS_LEADER=""
			[ -n "$NS_LEADER" ] && kill -s RTMIN+4 "$NS_LEADER" 2>/dev/null
			how="SIGRTMIN+4"
		fi
		if ns__wait_gone "$NS_PID" $((NS_POWEROFF_TIMEOUT * 1000)); then
			ok=1
			NS_POWEROFF_MS=$(ns__ms_since "$t0")
		else
			# SIGKILL to the container's PID 1 ends its pid namespace: every
			# process in it dies, and nspawn exits on its own, cleaning up.
			# (SIGTERM to nspawn would only ask for another orderly shutdown.)
			ns__log "container $NS_NAME did not power off within ${NS_POWEROFF_TIMEOUT}s ($how); SIGKILL to its PID 1"
			[ -n "$NS_LEADER" ] || NS_LEADER=$(ns__find_leader "$NS_PID") || NS_LEADER=""
			[ -n "$NS_LEADER" ] && kill -9 "$NS_LEADER" 2>/dev/null
			if ! ns__wait_gone "$NS_PID" 5000; then
				ns__log "SIGKILL to systemd-nspawn ($NS_PID)"
				kill -9 "$NS_PID" 2>/dev/null
				ns__wait_gone "$NS_PID" 5000
			fi
			NS_ERROR="the container did not power off within ${NS_POWEROFF_TIMEOUT}s ($how); it was killed"
		fi
	else
		ok=1
	fi
	if [ -n "$NS_KEEP_LOG" ] && [ -f "$NS_LOG" ]; then
		cp -f "$NS_LOG" "$NS_KEEP_LOG" 2>/dev/null
	fi
	ns__destroy "$NS_RUN" "$NS_NAME" "$NS_PID" "${NS_CGROUPS[@]}"
	# What must be gone now.
	[ -n "$NS_PID" ] && ns__alive "$NS_PID" && left+=" systemd-nspawn($NS_PID)"
	[ -n "$NS_LEADER" ] && ns__alive "$NS_LEADER" && left+=" container-init($NS_LEADER)"
	[ -n "$NS_RUN" ] && [ -e "$NS_RUN" ] && left+=" $NS_RUN"
	local cg
	for cg in "${NS_CGROUPS[@]}"; do [ -e "$cg" ] && left+=" $cg"; done
	if [ -n "$NS_NAME" ] && [ -e "/run/systemd/nspawn/propagate/$NS_NAME" ]; then
		left+=" /run/systemd/nspawn/propagate/$NS_NAME"
	fi
	if [ -n "$NS_CACHE_LOCK_FD" ]; then
		exec {NS_CACHE_LOCK_FD}>&-
		NS_CACHE_LOCK_FD=""
	fi
	NS_NAME="" NS_RUN="" NS_ROOT="" NS_PID="" NS_LEADER="" NS_BUS_ADDRESS="" NS_MODE=""
	NS_CGROUPS=()
	if [ -n "$left" ]; then
		NS_ERROR="${NS_ERROR:+$NS_ERROR; }left behind:$left"
		return 1
	fi
	[ $ok = 1 ]
}

# For an EXIT trap: powers off and removes the container if there is one.
# Never fails, never exits.
ns_cleanup() {
	if [ -n "$NS_RUN" ] || [ -n "$NS_PID" ]; then
		ns_poweroff || ns__log "clean-up: $NS_ERROR"
	fi
	return 0
}
