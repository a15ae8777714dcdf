#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A VRRP failover, recorded by kanotify, on this machine: two network
# namespaces joined by a veth pair, a keepalived in each. Node a (priority
# 150) reports through kanotify's argv front-end (`notify`), node b
# (priority 100) through its FIFO front-end (`vrrp_notify_fifo_script`).
# Node a's keepalived is stopped to force a failover to node b, and what
# kanotify recorded on each node is shown. Everything is removed at the end.
#
#   scripts/demo.sh                       installs deps, builds the release preset
#   KANOTIFY=/path/to/kanotify scripts/demo.sh   uses that binary, builds nothing
#
# Needs root. Exits non-zero if the failover does not happen within 10 s.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

START_TIMEOUT=10000
FAILOVER_TIMEOUT=10000

section() { printf '\n==== %s ====\n' "$*"; }
die() {
	echo "demo: $*" >&2
	if [ -n "${KN_RUN:-}" ] && [ -d "$KN_RUN" ] && kn_fifo_reader_died b; then
		echo "demo: keepalived of node b logged that its FIFO reader (kanotify fifo) exited early;" \
			"keepalived does not restart it, so node b's later transitions were never read" >&2
	fi
	if [ -n "${KN_RUN:-}" ] && [ -d "$KN_RUN" ]; then
		section "Logs (for diagnosis)"
		kn_dump_logs
	fi
	exit 1
}

[ "$(id -u)" = 0 ] || die "run me as root: I create network namespaces and run keepalived"

section "Dependencies"
scripts/deps.sh || die "scripts/deps.sh failed"
echo "keepalived: $(keepalived --version 2>&1 | head -n 1)"

if [ -n "${KANOTIFY:-}" ]; then
	bin=$KANOTIFY
	echo "kanotify: $bin (from \$KANOTIFY, not rebuilt)"
else
	section "Build (release preset)"
	cmake --preset release >/dev/null || die "cmake --preset release failed"
	cmake --build --preset release || die "the release build failed"
	bin=build/release/notify/kanotify
fi

# shellcheck source-path=SCRIPTDIR source=lib/netns.sh
source scripts/lib/netns.sh

kn_probe_netns || die "this machine cannot create network namespaces: $KN_ERROR"
kn_init || die "$KN_ERROR"
kn_prepare_binary "$bin" || die "$KN_ERROR"
kn_setup_netns || die "$KN_ERROR"
kn_write_configs || die "$KN_ERROR"

section "Set-up"
cat <<EOF
  node a: namespace ${KN_NS[a]}, ${KN_IF[a]} ${KN_ADDR[a]}/$KN_PREFIX, priority ${KN_PRIO[a]}
          $(grep -E '^ *notify ' "$KN_RUN/a/keepalived.conf" | sed 's/^ *//')
  node b: namespace ${KN_NS[b]}, ${KN_IF[b]} ${KN_ADDR[b]}/$KN_PREFIX, priority ${KN_PRIO[b]}
          $(grep -E '^ *vrrp_notify_fifo ' "$KN_RUN/b/keepalived.conf" | sed 's/^ *//')
          $(grep -E '^ *vrrp_notify_fifo_script ' "$KN_RUN/b/keepalived.conf" | sed 's/^ *//')
  vrrp_instance $KN_INSTANCE, virtual_router_id $KN_VRID, VIP $KN_VIP/$KN_PREFIX, advert_int 1
  a veth pair joins the two namespaces; no traffic leaves them
  run directory (configs, keepalived logs, state directories): $KN_RUN
EOF

section "Start-up"
start=$(kn_now_us)
kn_start_keepalived a || die "$KN_ERROR"
echo "started keepalived on node a (pid ${KN_KA_PID[a]}), waiting for it to become MASTER..."
kn_wait_content "$(kn_state_file a)" MASTER "$START_TIMEOUT" ||
	die "node a did not become MASTER within $((START_TIMEOUT / 1000)) s (state file: $KN_SEEN)"
echo "node a: MASTER after $(kn_fmt_ms "$(kn_ms_since "$start")") (three missed adverts plus skew: nobody else is there)"
kn_start_keepalived b || die "$KN_ERROR"
echo "started keepalived on node b (pid ${KN_KA_PID[b]})"
kn_wait_content "$(kn_state_file b)" BACKUP "$START_TIMEOUT" ||
	die "node b did not report BACKUP within $((START_TIMEOUT / 1000)) s (state file: $KN_SEEN)"
echo "node b: BACKUP after $(kn_fmt_ms "$KN_WAITED_MS") (it hears node a's adverts)"
kn_wait_vip a 1 1000 && echo "VIP $KN_VIP is on node a"

section "Failover"
echo "sending SIGTERM to node a's keepalived (pid ${KN_KA_PID[a]}), as 'systemctl stop keepalived' would"
t0=$(kn_now_us)
kn_signal_keepalived a || die "$KN_ERROR"
if ! kn_wait_content "$(kn_state_file b)" MASTER "$FAILOVER_TIMEOUT"; then
	die "no failover: node b's state file does not say MASTER $((FAILOVER_TIMEOUT / 1000)) s after the SIGTERM ($KN_SEEN)"
fi
failover_ms=$(kn_ms_since "$t0")
echo "node b: MASTER $(kn_fmt_ms "$failover_ms") after the SIGTERM (node a sent a priority-0 advert on its way out)"
kn_wait_vip b 1 1000 && echo "VIP $KN_VIP is now on node b"
if kn_wait_exit "${KN_KA_PID[a]}" 5000 && kn_wait_content "$(kn_state_file a)" STOP 3000; then
	echo "node a: keepalived exited, its STOP notify recorded"
else
	echo "node a: no STOP recorded ($KN_ERROR)"
fi

for node in a b; do
	if [ "$node" = a ]; then how="argv front-end"; else how="FIFO front-end"; fi
	section "Node $node ($how): kanotify status"
	kn_status "$node" 2>&1
	section "Node $node ($how): kanotify history"
	kn_history "$node" -n 0 2>&1
done

section "Summary"
echo "node a: $(kn_read_exact "$(kn_state_file a)"; printf '%s' "${KN_CONTENT%$'\n'}")   node b: $(kn_read_exact "$(kn_state_file b)"; printf '%s' "${KN_CONTENT%$'\n'}")"
echo "failover took $(kn_fmt_ms "$failover_ms") (SIGTERM to node a's keepalived -> node b's state file says MASTER)"

section "Cleanup"
kn_cleanup
echo "stopped keepalived on node b, removed namespaces ${KN_NS[a]} and ${KN_NS[b]} and $KN_RUN"
