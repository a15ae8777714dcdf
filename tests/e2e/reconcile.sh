#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# argv transitions without a sequence are checked against the interface in
# the instance's network namespace: keepalived adds the addresses before a
# MASTER notify and removes them before BACKUP/FAULT, so a late, older
# notify is contradicted by the kernel and journalled as stale.
#   reconcile.sh KANOTIFY_BINARY
set -euo pipefail
kanotify=${1:?usage: reconcile.sh KANOTIFY_BINARY}

skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create a network namespace"
command -v ip >/dev/null || skip "iproute2 is not installed"

ns="kanotify-rec-$$"
dir=$(mktemp -d /tmp/kanotify-reconcile.XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace here"
ip -n "$ns" link add vip0 type veth peer name vip0-peer
ip -n "$ns" link set vip0-peer up
ip -n "$ns" link set vip0 up
# No D-Bus signal: the machine's own system bus, if any, is none of this test's business.
printf '[dbus]\nsignal = false\n' > "$dir/kanotify.toml"
chmod 0644 "$dir/kanotify.toml"

fail() { echo "FAIL: $*"; echo "--- journal"; "$kanotify" history --config "$dir/kanotify.toml" --state-dir "$dir/state" -n 0 || true; exit 1; }

notify() {  # STATE
  "$kanotify" --config "$dir/kanotify.toml" --state-dir "$dir/state" --namespace "$ns" --interface vip0 \
    --address 192.0.2.100/24 --address 2001:db8::100/64 INSTANCE VI_1 "$1" 100 2>>"$dir/stderr"
}
last_outcome() {
  "$kanotify" history --json -n 1 --config "$dir/kanotify.toml" --state-dir "$dir/state" |
    sed -n 's/.*"outcome":"\([a-z]*\)".*/\1/p'
}
state() { cat "$dir/state/VI_1.state" 2>/dev/null || echo none; }
expect() {  # DESCRIPTION OUTCOME STATE
  local outcome; outcome=$(last_outcome)
  [ "$outcome" = "$2" ] || fail "$1: outcome '$outcome', expected '$2'"
  [ "$(state)" = "$3" ] || fail "$1: state file '$(state)', expected '$3'"
  echo "PASS: $1 ($2, state file $3)"
}

notify BACKUP
expect "BACKUP without the addresses" applied BACKUP
notify MASTER
expect "MASTER while the addresses are absent (a late notify)" stale BACKUP
ip -n "$ns" addr add 192.0.2.100/24 dev vip0
notify MASTER
expect "MASTER once keepalived added an address" applied MASTER
notify BACKUP
expect "BACKUP while the addresses are still there (a late notify)" stale MASTER
notify FAULT
expect "FAULT while the addresses are still there" stale MASTER
ip -n "$ns" addr del 192.0.2.100/24 dev vip0
ip -n "$ns" addr add 2001:db8::100/64 dev vip0 nodad
notify MASTER
expect "MASTER with only the IPv6 address present" applied MASTER
ip -n "$ns" addr del 2001:db8::100/64 dev vip0
notify FAULT
expect "FAULT once the addresses are gone" applied FAULT
notify STOP
expect "STOP is never second-guessed" applied STOP

# The check looks inside $ns only: the host's lo has 127.0.0.1, the
# namespace's lo (never brought up) has no address, so BACKUP stands.
"$kanotify" --config "$dir/kanotify.toml" --state-dir "$dir/state" --namespace "$ns" --interface lo \
  --address 127.0.0.1 INSTANCE VI_2 BACKUP 1 2>>"$dir/stderr"
[ "$(last_outcome)" = applied ] || fail "the host's 127.0.0.1 must not count inside $ns"
echo "PASS: the namespace's own loopback is what is checked, not the host's"
"$kanotify" --config "$dir/kanotify.toml" --state-dir "$dir/state" --namespace "no-such-ns-$$" \
  --address 192.0.2.1 INSTANCE VI_3 MASTER 1 2>>"$dir/stderr"
"$kanotify" history --json -n 1 --config "$dir/kanotify.toml" --state-dir "$dir/state" | grep -q '"note":"not reconciled' ||
  fail "a missing namespace should be noted, the transition applied"
[ "$(cat "$dir/state/VI_3.state")" = MASTER ] || fail "VI_3 should be MASTER"
echo "PASS: a missing namespace is noted and the transition applied"
echo "all reconciliation checks passed"
