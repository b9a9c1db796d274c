#!/bin/sh
# The version of a build of one commit, for `boxagent --version` and the
# .deb: VERSION (the next release) then ~git<commit time, UTC>.<commit>,
# e.g. 0.1.0~git20261205.120312.1be2e93a4c51. It sorts upward from commit to
# commit (dpkg --compare-versions; the time is to the second) and below the
# release itself, which is plain VERSION when the commit is tagged v<VERSION>.
# Outside a git checkout: VERSION as it is.
# Usage: deploy/version.sh [commit]   (default HEAD)
set -eu
cd "$(dirname "$0")/.."
c=${1:-HEAD}
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	cat VERSION
	exit
fi
when=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d.%H%M%S "$c" --)
base=$(git show "$c:VERSION")
if git tag --points-at "$c" | grep -qx "v$base"; then
	echo "$base"
else
	echo "$base~git$when.$(git rev-parse --short=12 "$c")"
fi
