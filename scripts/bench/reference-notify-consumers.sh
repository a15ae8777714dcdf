#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The yardstick for the failover storm (scripts/bench/storm.sh): what a
# careful, ordinary keepalived notify script does to record a transition and
# tell both consumers kanotify tells there, in the same order kanotify does:
#
#   - the previous state is read from the state file with `read` (a builtin);
#   - the state file is replaced atomically (mktemp in the same directory,
#     then `mv -f` over the old one), and one line is appended to a log file
#     with `echo >> file`, as scripts/bench/reference-notify.sh;
#   - curl POSTs kanotify's JSON body (no router id, so no neutron headers,
#     every state sent, STOP included, as kanotify's socket sink without a
#     router id) over the Unix socket; -f makes any answer but 2xx an error;
#   - `busctl emit` sends StateChanged(sssutta{sv}) on org.kanotify.Instance1
#     at /org/kanotify/instance/<name escaped as sd_bus_path_encode() does>,
#     with the arguments kanotify sends (sequence and time 0: dash has no
#     clock, and `date` would be one more program).
#
# Four program executions per transition beyond the script itself: mktemp,
# mv, curl, busctl. No fsync, no retry, no ordering between concurrent runs.
# A failed delivery makes the exit status non-zero (keepalived ignores it).
# The directory, the socket and the bus are hard-coded below, as a real
# script would have them; storm.sh writes a copy per node with its own.
set -eu

dir=/var/lib/keepalived-notify
socket=/run/keepalived-notify/agent.sock
bus=unix:path=/run/keepalived-notify/bus.sock
if [ $# -lt 3 ]; then
    echo "usage: $0 TYPE NAME STATE [PRIORITY]" >&2
    exit 2
fi
kind=$1 name=$2 state=$3 priority=${4:-0}
# The name goes into JSON and an object path unescaped: allow nothing that
# would need escaping.
case $name in
    '' | .* | */* | *[!A-Za-z0-9_.:@-]*)
        echo "$0: refusing instance name '$name'" >&2
        exit 2
        ;;
esac
case $priority in
    [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) ;;
    *)
        echo "$0: refusing priority '$priority'" >&2
        exit 2
        ;;
esac
case $kind in
    GROUP) node=group ;;
    *) node=instance ;;
esac

# sd_bus_path_encode(): letters and digits stay, anything else is _xx,
# with builtins only (dash forks for $(...)).
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

if [ -n "$previous" ]; then json_previous="\"$previous\""; else json_previous=null; fi
body="{\"kind\":\"$kind\",\"name\":\"$name\",\"state\":\"$state\",\"previous\":$json_previous,\"priority\":$priority,\"sequence\":0,\"time_usec\":0,\"source\":\"argv\"}"
status=0
curl -q -s -f -o /dev/null --max-time 5 --unix-socket "$socket" \
    -H 'Content-Type: application/json' -d "$body" http://localhost/ || status=1
busctl --address="$bus" emit "/org/kanotify/$node/$encoded" org.kanotify.Instance1 StateChanged \
    'sssutta{sv}' "$name" "$state" "$previous" "$priority" 0 0 2 kind s "$kind" source s argv || status=1
exit $status
