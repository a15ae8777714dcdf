#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The preload module without keepalived: a host program forks and execs
# notify commands as keepalived does, with the module in LD_PRELOAD.
#
#   tests/preload/interposition.sh HOST MODULE KANOTIFY
#
# The configured kanotify binary (KANOTIFY_BINARY) is a wrapper script that
# appends a line to exec.log and then execs the real binary: an exec of
# kanotify always leaves a line there, a transition handled in place never
# does, and its journal entry says `source: preload`.
#
# Needs nothing but a writable temporary directory; the AT_SECURE part
# needs root and a `nobody` account and says "skipped" for itself otherwise.
set -uo pipefail

[ $# -eq 3 ] || {
	echo "usage: $0 HOST MODULE KANOTIFY" >&2
	exit 2
}
host=$(readlink -f -- "$1")
module=$(readlink -f -- "$2")
kanotify=$(readlink -f -- "$3")

if [ "${KANOTIFY_SANITIZED:-0}" = 1 ]; then
	echo "skipped: the module is built with AddressSanitizer, which cannot be preloaded into programs built without it"
	exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kanotify-preload.XXXXXX") || exit 1
trap 'rm -rf -- "$work"' EXIT
chmod 0755 "$work"
failures=0

pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $1"
	[ $# -lt 2 ] || echo "  expected: $2"
	[ $# -lt 3 ] || echo "  found:    $3"
	failures=$((failures + 1))
}
check() { # check DESCRIPTION EXPECTED FOUND
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "$2" "$3"; fi
}

wrapper=$work/bin/kanotify
mkdir -p "$work/bin"
cat >"$wrapper" <<EOF
#!/bin/sh
echo "exec \$\$ \$*" >>"$work/exec.log"
exec "$kanotify" "\$@"
EOF
chmod 0755 "$wrapper"

execs() { if [ -f "$work/exec.log" ]; then wc -l <"$work/exec.log"; else echo 0; fi; }
# The value of KEY in the last journal line of state directory DIR about NAME.
last_field() {
	local dir=$1 name=$2 key=$3 line
	line=$(grep '"type":"transition"' "$dir/journal.jsonl" 2>/dev/null | grep "\"name\":\"$name\"" | tail -n 1)
	line=$(grep -o "\"$key\":\(\"[^\"]*\"\|[0-9]\+\|null\)" <<<"$line" | head -n 1)
	line=${line#*:}
	line=${line#\"}
	echo "${line%\"}"
}
state_of() { cat "$1/$2.state" 2>/dev/null || echo "(no state file)"; }

# The hook's environment: what the systemd drop-in sets.
hooked() { LD_PRELOAD=$module KANOTIFY_BINARY=$wrapper "$@"; }
# No D-Bus signal: a system bus on the machine is none of this test's business.
printf '[dbus]\nsignal = false\n' >"$work/kanotify.toml"
common=(--config "$work/kanotify.toml" --log-target stderr)

# 0. The module exports the interposed calls alone and needs libc alone.
if command -v nm >/dev/null && command -v readelf >/dev/null; then
	check "exported symbols" "execve fork" "$(nm -D --defined-only "$module" | awk '{print $3}' | sort | xargs)"
	needed=$(readelf -d "$module" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	check "needs libc" "libc.so.6" "$(grep -x 'libc.so.6' <<<"$needed")"
	check "needs nothing beyond libc and the loader" "" "$(grep -v -e '^libc\.so\.6$' -e '^ld-linux' <<<"$needed" | xargs)"
else
	echo "skipped: export and dependency checks (nm and readelf, from binutils, are not installed)"
fi

# 1. A transition is handled in the forked child, without an exec.
s=$work/s1
out=$(hooked "$host" run "$wrapper" --state-dir "$s" "${common[@]}" INSTANCE VI_1 MASTER 100 2>"$work/err")
check "in place: exit status" "exit 0" "$out"
check "in place: state file" "MASTER" "$(state_of "$s" VI_1)"
check "in place: no exec of the kanotify wrapper" "0" "$(execs)"
check "in place: journal source" "preload" "$(last_field "$s" VI_1 source)"
seq=$(last_field "$s" VI_1 sequence)
if [[ $seq =~ ^[0-9]+$ ]] && ((seq > 0)); then pass "in place: the fork stamp is the sequence ($seq)"; else fail "in place: sequence" "a fork stamp > 0" "$seq"; fi

# 2. The binary's exit codes, the same in place as exec'd.
for args in "INSTANCE bad/name MASTER 100" "INSTANCE VI_1 SIDEWAYS 100" "--bogus-flag" "" "INSTANCE VI_1 MASTER 100 --config $work/missing.toml"; do
	# shellcheck disable=SC2086  # the words are split on purpose
	direct=$("$kanotify" --state-dir "$work/direct" --log-target stderr $args >/dev/null 2>&1; echo "exit $?")
	# shellcheck disable=SC2086
	in_place=$(hooked "$host" run "$wrapper" --state-dir "$work/s2" --log-target stderr $args 2>/dev/null | tail -n 1)
	check "exit code of '${args:-no arguments}' in place is the binary's" "$direct" "$in_place"
done
help=$(hooked "$host" run "$wrapper" --help 2>/dev/null)
direct_help=$("$kanotify" --help 2>/dev/null)
check "--help in place: exit 0" "exit 0" "$(tail -n 1 <<<"$help")"
check "--help in place prints the binary's text" "$direct_help" "$(sed '$d' <<<"$help")"
check "still no exec of the kanotify wrapper" "0" "$(execs)"
check "a refused invocation is journalled with source preload" "preload" "$(grep '"type":"rejected"' "$work/s2/journal.jsonl" | tail -n 1 | grep -o '"source":"[a-z]*"' | cut -d'"' -f4)"

# 3. Other programs run untouched, without the hook; other preloads stay.
other=$(ldd /bin/true | awk '/libc\.so/ {print $3}')
out=$(LD_PRELOAD="$module $other" KANOTIFY_BINARY=$wrapper "$host" run /bin/sh -c \
	'printf "%s\n" "LD_PRELOAD=${LD_PRELOAD-unset}"; grep -c kanotify-preload /proc/$$/maps; exit 3' 2>&1)
check "another program: runs, its exit status, LD_PRELOAD without the hook, hook not mapped" \
	"LD_PRELOAD=$other"$'\n'"0"$'\n'"exit 3" "$out"
out=$(hooked "$host" run /bin/sh -c 'echo "LD_PRELOAD=${LD_PRELOAD-unset}"' 2>&1)
check "another program: LD_PRELOAD with the hook alone is removed" "LD_PRELOAD=unset"$'\n'"exit 0" "$out"
out=$(hooked "$host" run "$work/no-such-program" 2>&1 | tail -n 1)
check "a program that does not exist: execve fails as usual" "exit 127" "$out"

out=$(hooked "$host" errno 2>&1)
check "errno: fork leaves it alone, a failed execve reports the kernel's" "errno kept" "$out"

# 4. Two children of one instance finishing in reverse fork order: the
#    later fork's state stays. The same run without the hook (plain argv,
#    no sequence) ends in the earlier fork's state: what the hook fixes.
for mode in hook exec; do
	s=$work/reverse-$mode
	runner=(env)
	[ $mode = hook ] && runner=(env LD_PRELOAD="$module" KANOTIFY_BINARY="$wrapper")
	out=$("${runner[@]}" "$host" reverse 700 "$wrapper" --state-dir "$s" "${common[@]}" INSTANCE VI_2 MASTER 100 \
		-- --state-dir "$s" "${common[@]}" INSTANCE VI_2 BACKUP 100 2>/dev/null)
	check "reverse ($mode): both children exit 0" "first exit 0"$'\n'"second exit 0" "$out"
	if [ $mode = hook ]; then
		check "reverse (hook): the later fork's BACKUP stays" "BACKUP" "$(state_of "$s" VI_2)"
		check "reverse (hook): the earlier fork's MASTER, run last, is journalled stale" "stale" "$(last_field "$s" VI_2 outcome)"
		check "reverse (hook): MASTER came second" "MASTER" "$(last_field "$s" VI_2 state)"
	else
		check "reverse (exec, control): without the hook the earlier fork wins" "MASTER" "$(state_of "$s" VI_2)"
	fi
done
before=$(execs)
check "reverse: only the control run exec'd kanotify" "2" "$before"

# 5. A child of a multi-threaded parent gets the real exec.
s=$work/s5
out=$(hooked "$host" run --thread "$wrapper" --state-dir "$s" "${common[@]}" INSTANCE VI_3 MASTER 100 2>/dev/null)
check "multi-threaded parent: exit status" "exit 0" "$out"
check "multi-threaded parent: kanotify was exec'd" "$((before + 1))" "$(execs)"
check "multi-threaded parent: journal source argv" "argv" "$(last_field "$s" VI_3 source)"
check "multi-threaded parent: state file" "MASTER" "$(state_of "$s" VI_3)"

# 6. A broken configuration falls back to exec'ing the real binary.
n=$(execs)
for setting in "relative/kanotify" "$work/does-not-exist" ""; do
	s=$work/s6
	out=$(LD_PRELOAD=$module KANOTIFY_BINARY=$setting "$host" run "$wrapper" --state-dir "$s" "${common[@]}" INSTANCE VI_4 FAULT 100 2>/dev/null)
	n=$((n + 1))
	check "KANOTIFY_BINARY='$setting': exec'd, exit 0" "exit 0 $n" "$out $(execs)"
	check "KANOTIFY_BINARY='$setting': journal source argv" "argv" "$(last_field "$s" VI_4 source)"
done
# A subcommand (here status) is never run in place.
out=$(hooked "$host" run "$wrapper" status --state-dir "$work/s1" 2>/dev/null | tail -n 1)
n=$((n + 1))
check "a subcommand is exec'd" "exit 0 $n" "$out $(execs)"
# Matched by inode, not by name: a copy of the wrapper elsewhere is exec'd,
# a symlink to it is handled in place.
cp "$wrapper" "$work/bin/copy"
ln -s "$wrapper" "$work/bin/link"
s=$work/s7
hooked "$host" run "$work/bin/copy" --state-dir "$s" "${common[@]}" INSTANCE VI_5 MASTER 100 >/dev/null 2>&1
n=$((n + 1))
check "a copy of the binary (another inode) is exec'd" "$n argv" "$(execs) $(last_field "$s" VI_5 source)"
hooked "$host" run "$work/bin/link" --state-dir "$s" "${common[@]}" INSTANCE VI_5 BACKUP 100 >/dev/null 2>&1
check "a symlink to the binary is handled in place" "$n preload" "$(execs) $(last_field "$s" VI_5 source)"

# 6b. keepalived's shutdown backstop SIGKILLs the process group of every
# notify still running 1.1 s after its STOP notifies. A STOP handled in
# place goes on in a child outside that group and finishes; any other
# state is killed with its group.
count_hooks() { local n; n=$(grep -c '"type":"hook"' "$1/journal.jsonl" 2>/dev/null); echo "${n:-0}"; }
printf '[dbus]\nsignal = false\n[hooks]\nstop = [["/bin/sh", "-c", "sleep 0.6"]]\nmaster = [["/bin/sh", "-c", "sleep 0.6"]]\n' \
	>"$work/slow-hooks.toml"
s=$work/s6b
out=$(hooked "$host" killgroup 300 "$wrapper" --state-dir "$s" --config "$work/slow-hooks.toml" --log-target stderr \
	INSTANCE VI_8 STOP 0 2>/dev/null)
check "STOP, group killed at 300 ms: the process keepalived waits for is killed" "signal 9" "$out"
for _ in $(seq 50); do
	[ "$(count_hooks "$s")" = 0 ] || break
	sleep 0.1
done
check "STOP, group killed: the child outside the group ran the hook to its end and journalled it" "1" "$(count_hooks "$s")"
check "STOP, group killed: state file" "STOP" "$(state_of "$s" VI_8)"
check "STOP, group killed: journal source" "preload" "$(last_field "$s" VI_8 source)"
s=$work/s6b-master
out=$(hooked "$host" killgroup 300 "$wrapper" --state-dir "$s" --config "$work/slow-hooks.toml" --log-target stderr \
	INSTANCE VI_8 MASTER 100 2>/dev/null)
check "MASTER, group killed at 300 ms: killed" "signal 9" "$out"
sleep 1
check "MASTER, group killed: nothing outlives keepalived's kill but a STOP (no hook line)" "0" "$(count_hooks "$s")"
check "MASTER, group killed: the state was recorded before the kill" "MASTER" "$(state_of "$s" VI_8)"

# 7. AT_SECURE: a set-user-id host (root running a program owned by
#    nobody, so euid != uid). The loader ignores LD_PRELOAD for such a
#    program, so the host dlopen()s the module and calls its fork and
#    execve directly; the module must stay inert (real exec). The same host
#    without the set-id bit is the control (handled in place).
if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	echo "skipped: AT_SECURE part (needs root and a nobody account)"
else
	mkdir -m 1777 "$work/marker"
	cp "$host" "$work/host-setuid"
	cp "$module" "$work/module.so"
	chmod 0755 "$work/module.so"
	chown nobody "$work/host-setuid"
	chmod 4755 "$work/host-setuid"
	cat >"$work/bin/marker" <<EOF
#!/bin/sh
echo "exec \$*" >>"$work/marker/exec.log"
EOF
	chmod 0755 "$work/bin/marker"
	out=$(KANOTIFY_BINARY=$work/bin/marker "$work/host-setuid" dlopen "$work/module.so" "$work/bin/marker" \
		--state-dir "$work/marker/state" "${common[@]}" INSTANCE VI_6 MASTER 100 2>&1)
	if ! grep -q '^uid 0 euid [1-9][0-9]* secure 1$' <<<"$out"; then
		echo "skipped: AT_SECURE part (the set-user-id copy did not run secure, nosuid mount?): $out"
	else
		check "AT_SECURE: the module is inert, the real exec ran" "1 exit 0" \
			"$(wc -l <"$work/marker/exec.log" 2>/dev/null || echo 0) $(tail -n 1 <<<"$out")"
		chmod 0755 "$work/host-setuid"
		out=$(KANOTIFY_BINARY=$work/bin/marker "$work/host-setuid" dlopen "$work/module.so" "$work/bin/marker" \
			--state-dir "$work/marker/state" "${common[@]}" INSTANCE VI_6 MASTER 100 2>&1)
		check "AT_SECURE control (not set-id): handled in place, no exec" "1 exit 0 preload" \
			"$(wc -l <"$work/marker/exec.log") $(tail -n 1 <<<"$out") $(last_field "$work/marker/state" VI_6 source)"
	fi
fi

if ((failures)); then
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS"
