#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the Debian packages from a clean export of the repository (never
# from the working tree's build directories), then runs lintian on them and
# fails on any error or warning.
#
#   scripts/build-deb.sh [--worktree] [OUTDIR]
#
# The export is HEAD; --worktree exports the working copy instead (tracked
# and untracked files, .gitignore honoured), for trying changes before a
# commit. The .deb, .changes
# and .buildinfo files land in OUTDIR (default dist/deb). Build dependencies
# come from the machine's apt sources (`apt-get build-dep` on the exported
# tree, as root); dpkg-buildpackage runs with -us -uc -b.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

ref=HEAD
worktree=0
if [ "${1:-}" = --worktree ]; then
	worktree=1
	shift
fi
out=${1:-dist/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in git dpkg-buildpackage lintian; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "build-deb: $tool is missing (scripts/deps.sh installs it)" >&2
		exit 1
	}
done

version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/kanotify-deb.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
src="$work/kanotify-$version"
mkdir -p "$src"
if ((worktree)); then
	# A tree of the working copy (tracked and untracked files, .gitignore
	# honoured) written through a private index: the real index and the
	# working tree are not touched.
	export GIT_INDEX_FILE="$work/index"
	git -C "$repo" read-tree HEAD
	git -C "$repo" add -A
	ref=$(git -C "$repo" write-tree)
	unset GIT_INDEX_FILE
fi
git -C "$repo" archive --format=tar "$ref" | tar -x -C "$src"
# dpkg-buildpackage wants debian/ at the top of the source tree.
cp -a "$src/packaging/debian" "$src/debian"

cd "$src"
if ! dpkg-checkbuilddeps >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		dpkg-checkbuilddeps || true
		echo "build-deb: build dependencies missing (run as root to install them)" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq ./ >/dev/null
fi

export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=$(nproc)}
echo "=== build-deb: dpkg-buildpackage -us -uc -b (kanotify $version, DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)"
dpkg-buildpackage -us -uc -b

changes=$(ls "$work"/kanotify_"${version}"_*.changes)
# Copy what the .changes lists (the packages and the .buildinfo), and it,
# before lintian: a package lintian rejects stays there to be examined.
files=$(sed -n '/^Files:/,/^[^ ]/{/^ /s/.* //p}' "$changes")
for f in $files; do
	cp -- "$work/$f" "$out/"
done
cp -- "$changes" "$out/"
changes="$out/$(basename "$changes")"
echo "=== build-deb: packages in $out:"
(cd "$out" && for f in $files; do echo "  $f"; done)

echo "=== build-deb: lintian $(basename "$changes")"
# An error or a warning fails the build; info tags are shown too.
lintian --info --display-info --fail-on error,warning "$changes"
