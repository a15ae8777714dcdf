#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs, from the machine's own apt sources, every Debian package that
# building kanotify, its tests and its demo need. Safe to run repeatedly.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config
  libfmt-dev libcli11-dev libtomlplusplus-dev libexpected-dev nlohmann-json3-dev
  libnl-3-dev libnl-route-3-dev libsystemd-dev
  catch2
  # integration and end-to-end tests, demo: keepalived in namespaces, a
  # private dbus-daemon, busctl (systemd) as an outside D-Bus client
  keepalived iproute2 procps util-linux psmisc
  dbus-daemon dbus-bin systemd libsystemd0
  # a real systemd for the unit tests: systemd-nspawn boots a minimal Debian
  # tree that debootstrap builds once from the machine's apt sources
  systemd-container debootstrap debian-archive-keyring
  # the wall clock stepped back for kanotify's processes only
  faketime
  # announcer tests and benchmark: captures on the peer side, arping to compare
  tcpdump iputils-arping
  # least-privilege test: a Unix-socket listener in another user's directory
  socat
  # the failover storm's reference notify script posts to the socket listener
  curl
  # packages: man pages, Debian packages and lintian, the RPM spec
  scdoc dpkg-dev debhelper fakeroot lintian rpm
  # libFuzzer targets (the fuzz preset, run for a bounded time by scripts/test.sh)
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
