#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A full disk and a read-only state directory: the transition fails with a
# clear error (exit 71), the previous state file and the journal stay intact
# and readable, nothing half-written is left, and once the disk is usable
# again the next transition records the latest state.
#   full_disk.sh KANOTIFY_BINARY
set -euo pipefail
kanotify=${1:?usage: full_disk.sh KANOTIFY_BINARY}

skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to mount a small tmpfs"

dir=$(mktemp -d /tmp/kanotify-fulldisk.XXXXXX)
mnt="$dir/mnt"
mkdir "$mnt"
cleanup() { umount "$mnt" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
mount -t tmpfs -o size=512k,mode=0755 tmpfs "$mnt" 2>/dev/null || skip "cannot mount a tmpfs here"
printf '[dbus]\nsignal = false\n' > "$dir/kanotify.toml"
chmod 0644 "$dir/kanotify.toml"
state="$mnt/state"
k() { "$kanotify" --log-target stderr --config "$dir/kanotify.toml" --state-dir "$state" "$@"; }
fail() { echo "FAIL: $*"; ls -la "$state" || true; exit 1; }

check_intact() {  # EXPECTED_STATE
  [ "$(cat "$state/VI_1.state")" = "$1" ] || fail "state file is '$(cat "$state/VI_1.state")', expected '$1'"
  "$kanotify" history -n 0 --json --config "$dir/kanotify.toml" --state-dir "$state" > "$dir/history" 2> "$dir/history.err" ||
    fail "the journal cannot be read"
  ! grep -q incomplete "$dir/history.err" || fail "the journal has a torn record"
  ! ls -A "$state" "$state/group" | grep -q '\.tmp-' || fail "a temporary file was left behind"
}

k INSTANCE VI_1 BACKUP 100 2>/dev/null || fail "the first transition failed"
check_intact BACKUP
echo "PASS: BACKUP recorded on the small tmpfs"

# Fill the file system to the last byte.
dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true
dd if=/dev/zero of="$mnt/filler2" bs=1 2>/dev/null || true
set +e
k INSTANCE VI_1 MASTER 100 2> "$dir/err"
status=$?
set -e
[ "$status" -eq 71 ] || fail "exit $status on a full disk, expected 71"
grep -q "No space left on device" "$dir/err" || fail "no clear error: $(cat "$dir/err")"
check_intact BACKUP
echo "PASS: full disk: exit 71 ($(head -n 1 "$dir/err" | cut -c1-100)), BACKUP and the journal intact, nothing half-written"

rm -f "$mnt/filler" "$mnt/filler2"
k INSTANCE VI_1 MASTER 100 2>/dev/null || fail "the transition after freeing space failed"
check_intact MASTER
grep -q '"state":"MASTER","previous":"BACKUP"' "$dir/history" || fail "the journal lacks the MASTER transition"
echo "PASS: space freed: MASTER recorded and journalled"

mount -o remount,ro "$mnt"
set +e
k INSTANCE VI_1 FAULT 100 2> "$dir/err"
status=$?
set -e
[ "$status" -eq 71 ] || fail "exit $status on a read-only state directory, expected 71"
grep -q "Read-only file system" "$dir/err" || fail "no clear error: $(cat "$dir/err")"
check_intact MASTER
echo "PASS: read-only: exit 71 ($(head -n 1 "$dir/err" | cut -c1-100)), MASTER and the journal intact"

mount -o remount,rw "$mnt"
k INSTANCE VI_1 FAULT 100 2>/dev/null || fail "the transition after remounting read-write failed"
check_intact FAULT
echo "PASS: writable again: FAULT recorded"
echo "all full-disk and read-only checks passed"
