#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end: a reduced failover storm (scripts/bench/storm.sh, N=20 VRRP
# instances per node, real keepalived in two namespaces, a Unix-socket
# listener and a private D-Bus per node), correctness only, in both
# scenarios (node a's keepalived stopped, the link cut): every state file
# right on both nodes, every instance's last message at the socket listener
# its final state, no transition lost or applied out of keepalived's order,
# and none missing or out of order at the socket listener, for the FIFO
# reader, the preload hook and argv mode (its instances' addresses are
# configured).
# The D-Bus subscriber's counts are printed, not checked: a D-Bus signal is
# not owed (no pending entry, no later flush), so a handler keepalived kills
# loses it by design.
#
#   tests/e2e/storm.sh KANOTIFY MODULE CONSUMER
#
# Needs root, network namespaces, keepalived and iproute2; otherwise prints
# "skipped: <reason>" and exits 77. Under the sanitizers only the FIFO
# variant runs: the module carries libasan, which keepalived cannot preload,
# and an ASan build's start-up (about 90 ms of CPU per argv process here)
# makes the argv STOP notifies outlive the second keepalived gives them.
set -uo pipefail

[ $# -eq 3 ] || {
	echo "usage: $0 KANOTIFY MODULE CONSUMER" >&2
	exit 2
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
variants=(argv fifo preload)
if [ "${KANOTIFY_SANITIZED:-0}" = 1 ]; then
	echo "note: sanitized build, only the FIFO variant runs (no preload into keepalived; argv too slow to start under ASan for keepalived's STOP window)"
	variants=(fifo)
fi
N=${STORM_N:-20} CHECK=1 KANOTIFY=$1 MODULE=$2 CONSUMER=$3 exec bash "$here/../../scripts/bench/storm.sh" "${variants[@]}"
