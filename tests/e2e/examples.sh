#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The shipped examples are what users copy: keepalived must accept the
# keepalived.conf ones, kanotify the kanotify.toml one.
#   examples.sh KANOTIFY_BINARY EXAMPLES_DIR
set -euo pipefail
kanotify=${1:?usage: examples.sh KANOTIFY_BINARY EXAMPLES_DIR}
examples=${2:?usage: examples.sh KANOTIFY_BINARY EXAMPLES_DIR}

command -v keepalived >/dev/null || { echo "skipped: keepalived is not installed"; exit 77; }
status=0
for conf in "$examples"/keepalived-*.conf; do
  if out=$(keepalived --config-test -f "$conf" 2>&1); then
    echo "PASS: keepalived accepts $(basename "$conf")"
  else
    echo "FAIL: keepalived rejects $(basename "$conf"):"; echo "$out"; status=1
  fi
done
dir=$(mktemp -d /tmp/kanotify-examples.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cp "$examples/kanotify.toml" "$dir/kanotify.toml"
chmod 0644 "$dir/kanotify.toml"
if out=$("$kanotify" status --config "$dir/kanotify.toml" --state-dir "$dir/state" 2>&1); then
  echo "PASS: kanotify accepts kanotify.toml"
else
  echo "FAIL: kanotify rejects kanotify.toml:"; echo "$out"; status=1
fi
# The commented-out instance table must be valid too once uncommented.
sed 's/^#\(\[instance\|namespace\|interface\|addresses\|router_id\)/\1/' "$examples/kanotify.toml" > "$dir/kanotify.toml"
if out=$("$kanotify" status --config "$dir/kanotify.toml" --state-dir "$dir/state" 2>&1); then
  echo "PASS: kanotify accepts kanotify.toml with its instance table uncommented"
else
  echo "FAIL: the uncommented instance table is rejected:"; echo "$out"; status=1
fi
exit $status
