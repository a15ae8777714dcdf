#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The yardstick for scripts/bench/argv.sh: what a careful, ordinary keepalived
# notify script does for one transition. keepalived's generic `notify`
# appends TYPE NAME STATE PRIORITY to the command it runs.
#
#   - the state file is replaced atomically: the new content goes to a
#     temporary file made by mktemp in the same directory, then `mv -f`
#     renames it over the old one (rename(2), so a reader sees old or new);
#   - one line is appended to a log file with `echo >> file` (a builtin:
#     no `date`, no `logger`, so no extra process for the log).
#
# It does not fsync anything: plain sh has no way to, short of running
# `sync` (one more process). That is what typical scripts do, and it is
# why they can lose the last transition on a power cut.
#
# The directory is $NOTIFY_DIR (a real script would hard-code it).
set -eu

dir=${NOTIFY_DIR:-/var/lib/keepalived-notify}
if [ $# -lt 3 ]; then
    echo "usage: $0 TYPE NAME STATE [PRIORITY]" >&2
    exit 2
fi
kind=$1 name=$2 state=$3 priority=${4:-}
case $name in
    '' | .* | */*)
        echo "$0: refusing instance name '$name'" >&2
        exit 2
        ;;
esac

tmp=$(mktemp "$dir/.$name.state.XXXXXX")
if ! printf '%s\n' "$state" >"$tmp" || ! mv -f "$tmp" "$dir/$name.state"; then
    rm -f "$tmp"
    exit 1
fi
echo "$kind $name $state $priority" >>"$dir/notify.log"
