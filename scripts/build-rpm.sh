#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the RPM packages from packaging/rpm/kanotify.spec with `rpmbuild
# -bb` on a git archive of HEAD (--worktree: of the working copy, as
# scripts/build-deb.sh does), in a private rpmbuild tree, then checks the
# main package's payload: the binary root:root 0755, the configuration a
# noreplace conffile.
#
#   scripts/build-rpm.sh [--worktree] [OUTDIR] [-- RPMBUILD-ARGS...]
#
# On Debian (no RPM database of build dependencies) rpmbuild runs with
# --nodeps: the build dependencies are the Debian packages scripts/deps.sh
# installs. RPMs land in OUTDIR (default dist/rpm).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

worktree=0
if [ "${1:-}" = --worktree ]; then
	worktree=1
	shift
fi
out=dist/rpm
if [ $# -gt 0 ] && [ "$1" != -- ]; then
	out=$1
	shift
fi
[ "${1:-}" != -- ] || shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

command -v rpmbuild >/dev/null 2>&1 || {
	echo "build-rpm: rpmbuild is missing (scripts/deps.sh installs Debian's rpm)" >&2
	exit 1
}
spec=packaging/rpm/kanotify.spec
version=$(sed -n 's/^Version: *//p' "$spec")
work=$(mktemp -d "${TMPDIR:-/tmp}/kanotify-rpm.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$work"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,BUILDROOT}

ref=HEAD
if ((worktree)); then
	export GIT_INDEX_FILE="$work/index"
	git -C "$repo" read-tree HEAD
	git -C "$repo" add -A
	ref=$(git -C "$repo" write-tree)
	unset GIT_INDEX_FILE
fi
git -C "$repo" archive --format=tar.gz --prefix="kanotify-$version/" -o "$work/SOURCES/kanotify-$version.tar.gz" "$ref"
cp "$spec" "$work/SPECS/"

nodeps=()
[ -e /etc/debian_version ] && nodeps=(--nodeps)
echo "=== build-rpm: rpmbuild -bb ${nodeps[*]} $* (kanotify $version)"
rpmbuild -bb "${nodeps[@]}" --define "_topdir $work" \
	--define "_smp_mflags -j$(nproc)" "$@" "$work/SPECS/kanotify.spec"

main=$(ls "$work"/RPMS/*/kanotify-"$version"-*.rpm)
# --dump: path size mtime digest mode owner group isconfig isdoc ...
dump=$(rpm -qp --dump "$main" 2>/dev/null)
line=$(grep '^/usr/sbin/kanotify ' <<<"$dump")
read -r _ _ _ _ mode owner group _ <<<"$line"
[ "$mode $owner $group" = "0100755 root root" ] || {
	echo "build-rpm: /usr/sbin/kanotify is '$mode $owner $group', expected 0100755 root root" >&2
	exit 1
}
rpm -qp --configfiles "$main" 2>/dev/null | grep -qx /etc/kanotify/kanotify.toml || {
	echo "build-rpm: /etc/kanotify/kanotify.toml is not a config file of $main" >&2
	exit 1
}
cp "$work"/RPMS/*/*.rpm "$out/"
echo "=== build-rpm: packages in $out:"
(cd "$out" && ls -1 ./*.rpm | sed 's|^\./|  |')
echo "=== build-rpm: payload of $(basename "$main"):"
rpm -qlvp "$main" 2>/dev/null | sed 's/^/  /'
