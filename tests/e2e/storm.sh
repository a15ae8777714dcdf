#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end: a reduced failover storm (scripts/bench/storm.sh, N=20 VRRP
# instances per node, real keepalived in two namespaces), correctness only:
# every state file right on both nodes after node a's keepalived is stopped,
# and, for the FIFO reader and the preload hook, no transition lost and none
# applied out of keepalived's order. argv mode runs too (its instances'
# addresses are configured): every state file must be right.
#
#   tests/e2e/storm.sh KANOTIFY MODULE
#
# Needs root, network namespaces, keepalived and iproute2; otherwise prints
# "skipped: <reason>" and exits 77. Under the sanitizers only the FIFO
# variant runs: the module carries libasan, which keepalived cannot preload,
# and an ASan build's start-up (about 90 ms of CPU per argv process here)
# makes the argv STOP notifies outlive the second keepalived gives them.
set -uo pipefail

[ $# -eq 2 ] || {
	echo "usage: $0 KANOTIFY MODULE" >&2
	exit 2
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
variants=(argv fifo preload)
if [ "${KANOTIFY_SANITIZED:-0}" = 1 ]; then
	echo "note: sanitized build, only the FIFO variant runs (no preload into keepalived; argv too slow to start under ASan for keepalived's STOP window)"
	variants=(fifo)
fi
N=${STORM_N:-20} CHECK=1 KANOTIFY=$1 MODULE=$2 exec bash "$here/../../scripts/bench/storm.sh" "${variants[@]}"
