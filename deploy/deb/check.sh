#!/bin/sh
# make deb-check: build the packages twice into two folders, require equal
# bytes, check each package's contents and control fields, run lintian.
# The second build has an empty Go build cache (five cold builds) unless
# DEB_CHECK_WARM=1: make test-artifacts sets it, as `make repro` there
# already builds with an empty cache.
# Usage: deploy/deb/check.sh  (from the repository root; MAKE may be set)
set -eu
make=${MAKE:-make}
command -v lintian >/dev/null || {
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian
}
a=$(mktemp -d) b=$(mktemp -d)
trap 'rm -rf "$a" "$b"' EXIT
"$make" --no-print-directory deb BIN="$a" >/dev/null
if [ "${DEB_CHECK_WARM:-}" = 1 ]; then
	"$make" --no-print-directory deb BIN="$b" >/dev/null
else
	GOCACHE="$b/.gocache" "$make" --no-print-directory deb BIN="$b" >/dev/null
fi
n=0
for f in "$a"/*.deb; do
	name=$(basename "$f")
	ha=$(sha256sum "$f" | cut -d' ' -f1)
	hb=$(sha256sum "$b/$name" | cut -d' ' -f1)
	[ "$ha" = "$hb" ] || { echo "deb-check: $name differs between two builds" >&2; exit 1; }
	arch=$(dpkg-deb -f "$f" Architecture)
	case "$name" in *"_$arch.deb") ;; *) echo "deb-check: $name says Architecture: $arch" >&2; exit 1 ;; esac
	list=$(dpkg-deb -c "$f")
	for p in ./usr/bin/boxagent ./lib/systemd/system/boxagent.service ./lib/systemd/system/boxagent-firstboot.service \
		./lib/systemd/system/boxagent-mount@.service ./lib/systemd/system/boxagent-pppoe@.service \
		./lib/systemd/system/boxagent-pulseaudio.service ./usr/share/boxagent/pulseaudio/system.pa \
		./lib/systemd/system/boxagent-pipewire.service ./lib/systemd/system/boxagent-wireplumber.service \
		./lib/systemd/system/boxagent-pipewire-pulse.service ./lib/systemd/system/boxagent-pipewire-user.service \
		./usr/lib/sysusers.d/boxagent-pipewire.conf \
		./usr/share/boxagent/pipewire/wireplumber/main.lua.d/51-boxagent.lua \
		./usr/share/boxagent/pipewire/wireplumber/bluetooth.lua.d/51-boxagent.lua \
		./usr/share/boxagent/pipewire/wireplumber/policy.lua.d/51-boxagent.lua \
		./usr/share/polkit-1/rules.d/50-boxagent.rules ./usr/lib/modules-load.d/boxagent.conf ./usr/lib/udev/rules.d/70-boxagent-sticks.rules ./usr/share/doc/boxagent/copyright ./usr/share/doc/boxagent/changelog.gz ./usr/share/doc/boxagent/examples/config.toml \
		./usr/share/bash-completion/completions/boxagent ./usr/share/zsh/vendor-completions/_boxagent \
		./usr/share/fish/vendor_completions.d/boxagent.fish ./usr/share/man/man1/boxagent.1.gz; do
		echo "$list" | awk '{print $6}' | grep -qx "$p" || { echo "deb-check: $name lacks $p" >&2; exit 1; }
	done
	if echo "$list" | awk '$2 != "root/root"' | grep -q .; then
		echo "deb-check: $name has files not owned by root/root" >&2; exit 1
	fi
	if echo "$list" | awk '{print $6}' | grep -q '^\./etc/'; then
		echo "deb-check: $name ships /etc (the config holds secrets: it is never shipped)" >&2; exit 1
	fi
	printf '%-44s %9d bytes  sha256 %s  identical\n' "$name" "$(stat -c %s "$f")" "$ha"
	n=$((n + 1))
done
[ "$n" -eq 4 ] || { echo "deb-check: $n packages, want 4" >&2; exit 1; }
lintian --fail-on error,warning "$a"/*.deb 2>&1 | grep -v 'running with root privileges' || true
lintian --fail-on error,warning "$a"/*.deb >/dev/null 2>&1 || { echo "deb-check: lintian failed" >&2; exit 1; }
host=$(dpkg --print-architecture)
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	deploy/deb/install-test.sh "$a"/boxagent_*_"$host".deb
else
	echo "deb-check: install test skipped: it needs root with the right to mount (an overlay of /)"
fi
echo "deb-check: 4 packages, reproducible, contents as expected, lintian: no errors or warnings"
