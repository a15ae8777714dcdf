#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The yardstick for the D-Bus rows of scripts/bench/sinks.sh: what a careful,
# ordinary keepalived notify script does to record a transition and announce
# it on D-Bus with the same signal kanotify emits.
#
#   - the previous state is read from the state file with `read` (a builtin);
#   - the new state file is written as scripts/bench/reference-notify.sh does
#     it (mktemp in the same directory, then `mv -f` over the old one), and
#     one line is appended to a log file with `echo >> file`;
#   - `busctl emit` sends StateChanged(sssutta{sv}) on org.kanotify.Instance1
#     at /org/kanotify/instance/<name>, the name escaped as
#     sd_bus_path_encode() does it (VI_1 -> VI_5f1), with kanotify's
#     arguments: name, state, previous, priority, sequence (0), time in
#     microseconds (0: dash has no clock, and `date +%s%6N` would be one
#     more program) and the details {kind, source}.
#
# Three program executions per transition beyond the script itself: mktemp,
# mv, busctl. No fsync. The directory is $NOTIFY_DIR and the bus
# $NOTIFY_BUS_ADDRESS (a real script would hard-code both, or use --system).
set -eu

dir=${NOTIFY_DIR:-/var/lib/keepalived-notify}
bus=${NOTIFY_BUS_ADDRESS:-unix:path=/run/dbus/system_bus_socket}
if [ $# -lt 3 ]; then
    echo "usage: $0 TYPE NAME STATE [PRIORITY]" >&2
    exit 2
fi
kind=$1 name=$2 state=$3 priority=${4:-0}
case $name in
    '' | .* | */* | *[!A-Za-z0-9_.:@-]*)
        echo "$0: refusing instance name '$name'" >&2
        exit 2
        ;;
esac
case $kind in
    GROUP) node=group ;;
    *) node=instance ;;
esac

# sd_bus_path_encode(): letters and digits stay, anything else is _xx.
# A loop over the characters with builtins only (no $(...): dash forks for it).
encoded='' rest=$name
while [ -n "$rest" ]; do
    tail=${rest#?}
    c=${rest%"$tail"}
    case $c in
        [A-Za-z0-9]) encoded=$encoded$c ;;
        _) encoded=${encoded}_5f ;;
        -) encoded=${encoded}_2d ;;
        .) encoded=${encoded}_2e ;;
        :) encoded=${encoded}_3a ;;
        @) encoded=${encoded}_40 ;;
    esac
    rest=$tail
done

previous=
if [ -f "$dir/$name.state" ]; then
    read -r previous <"$dir/$name.state" || previous=
fi
tmp=$(mktemp "$dir/.$name.state.XXXXXX")
if ! printf '%s\n' "$state" >"$tmp" || ! mv -f "$tmp" "$dir/$name.state"; then
    rm -f "$tmp"
    exit 1
fi
echo "$kind $name $state $priority" >>"$dir/notify.log"

exec busctl --address="$bus" emit "/org/kanotify/$node/$encoded" org.kanotify.Instance1 StateChanged \
    'sssutta{sv}' "$name" "$state" "$previous" "$priority" 0 0 2 kind s "$kind" source s argv
