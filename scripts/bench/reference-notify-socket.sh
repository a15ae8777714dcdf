#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The yardstick for the Unix-socket rows of scripts/bench/sinks.sh: what a
# careful, ordinary keepalived notify script does to record a transition and
# tell a neutron-style agent listening on a Unix socket, as kanotify's socket
# sink does it.
#
#   - the previous state is read from the state file with `read` (a builtin);
#   - the new state file is written as scripts/bench/reference-notify.sh does
#     it (mktemp in the same directory, then `mv -f` over the old one), and
#     one line is appended to a log file with `echo >> file`;
#   - curl POSTs kanotify's JSON body over the socket with the
#     X-Neutron-Router-Id and X-Neutron-State headers (MASTER -> primary);
#     -f makes any answer but 2xx (or 3xx) an error, as kanotify requires a
#     2xx. "http://localhost/" only names the Host header: with
#     --unix-socket, curl sends everything to the socket. time_usec is 0
#     (dash has no clock; `date +%s%6N` would be one more program).
#
# Three program executions per transition beyond the script itself: mktemp,
# mv, curl. No fsync, no retry. The directory is $NOTIFY_DIR, the socket
# $NOTIFY_AGENT_SOCKET and the router id $NOTIFY_ROUTER_ID (a real script
# would hard-code them).
set -eu

dir=${NOTIFY_DIR:-/var/lib/keepalived-notify}
socket=${NOTIFY_AGENT_SOCKET:-/var/lib/neutron/ha_confs/keepalived-state-change}
router=${NOTIFY_ROUTER_ID:-r1}
if [ $# -lt 3 ]; then
    echo "usage: $0 TYPE NAME STATE [PRIORITY]" >&2
    exit 2
fi
kind=$1 name=$2 state=$3 priority=${4:-null}
# The name goes into JSON unescaped: allow nothing that would need escaping.
case $name in
    '' | .* | */* | *[!A-Za-z0-9_.:@-]*)
        echo "$0: refusing instance name '$name'" >&2
        exit 2
        ;;
esac
case $priority in
    null | [0-9] | [0-9][0-9] | [0-9][0-9][0-9]) ;;
    *)
        echo "$0: refusing priority '$priority'" >&2
        exit 2
        ;;
esac
case $state in
    MASTER) neutron=primary ;;
    BACKUP) neutron=backup ;;
    FAULT) neutron=fault ;;
    *) neutron= ;;
esac

previous=null
if [ -f "$dir/$name.state" ]; then
    read -r previous <"$dir/$name.state" || previous=
    previous="\"$previous\""
fi
tmp=$(mktemp "$dir/.$name.state.XXXXXX")
if ! printf '%s\n' "$state" >"$tmp" || ! mv -f "$tmp" "$dir/$name.state"; then
    rm -f "$tmp"
    exit 1
fi
echo "$kind $name $state $priority" >>"$dir/notify.log"

# neutron has no name for other states: nothing to tell the agent.
[ -n "$neutron" ] || exit 0
body="{\"kind\":\"$kind\",\"name\":\"$name\",\"state\":\"$state\",\"previous\":$previous,\"priority\":$priority,\"sequence\":0,\"time_usec\":0,\"source\":\"argv\",\"router_id\":\"$router\"}"
exec curl -q -s -f -o /dev/null --max-time 5 --unix-socket "$socket" \
    -H 'Content-Type: application/json' -H "X-Neutron-Router-Id: $router" -H "X-Neutron-State: $neutron" \
    -d "$body" http://localhost/
