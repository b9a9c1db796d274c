#!/bin/sh
# Builds one boxagent .deb, reproducibly: same commit, same bytes.
# Usage: deploy/deb/build.sh DEB_ARCH GOARCH   (from the repository root)
# Environment (set by deb.mk): VERSION, LDFLAGS, BIN, SOURCE_DATE_EPOCH, GO.
set -eu
deb_arch=$1 goarch=$2
: "${VERSION:?}" "${BIN:?}" "${SOURCE_DATE_EPOCH:?}" "${LDFLAGS=}" "${GO:=go}"
export SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C

# binary GOARCH: bin/boxagent-linux-GOARCH, built as `make cross` does
# when it is missing.
binary() {
	b="$BIN/boxagent-linux-$1"
	if [ ! -x "$b" ]; then
		goarm=""; [ "$1" = arm ] && goarm=7
		mkdir -p "$BIN"
		env CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOOS=linux GOARCH="$1" GOARM="$goarm" \
			"$GO" build -ldflags "$LDFLAGS" -o "$b" ./cmd/boxagent
	fi
	echo "$b"
}
bin=$(binary "$goarch")
# The completions and the manual page are made by the same tree's binary
# for this machine, from its command table.
host=$(binary "$("$GO" env GOHOSTARCH)")

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022
doc="$stage/usr/share/doc/boxagent"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$doc/examples" "$stage/usr/share/lintian/overrides" \
	"$stage/usr/share/polkit-1/rules.d" "$stage/usr/lib/modules-load.d" "$stage/usr/lib/udev/rules.d"
install -m 0755 "$bin" "$stage/usr/bin/boxagent"
install -m 0644 deploy/systemd/boxagent.service deploy/systemd/boxagent-firstboot.service \
	deploy/systemd/boxagent-mount@.service deploy/systemd/boxagent-pppoe@.service \
	deploy/systemd/boxagent-resolvconf.path deploy/systemd/boxagent-resolvconf.service "$stage/lib/systemd/system/"
# Modules the unit's device rules need loaded before it starts (the file says why).
install -m 0644 deploy/systemd/boxagent-modules.conf "$stage/usr/lib/modules-load.d/boxagent.conf"
# USB sticks readable by group boxagent, so the agent is not in group disk.
install -m 0644 deploy/systemd/70-boxagent-sticks.rules "$stage/usr/lib/udev/rules.d/70-boxagent-sticks.rules"
# The system-mode PulseAudio for boards without PipeWire: shipped, not
# enabled (deploy/pulseaudio/README.md).
install -m 0644 deploy/pulseaudio/boxagent-pulseaudio.service "$stage/lib/systemd/system/"
install -D -m 0644 deploy/pulseaudio/system.pa "$stage/usr/share/boxagent/pulseaudio/system.pa"
install -m 0644 deploy/pulseaudio/boxagent-pulse.conf "$stage/usr/share/boxagent/pulseaudio/boxagent-pulse.conf"
# The system-wide PipeWire for boxes without a user session: shipped, not
# enabled; WirePlumber's overrides where its units' XDG_CONFIG_HOME points
# (deploy/pipewire/README.md).
install -m 0644 deploy/pipewire/boxagent-pipewire.service deploy/pipewire/boxagent-wireplumber.service \
	deploy/pipewire/boxagent-pipewire-pulse.service deploy/pipewire/boxagent-pipewire-user.service "$stage/lib/systemd/system/"
install -D -m 0644 deploy/pipewire/boxagent-pipewire.sysusers "$stage/usr/lib/sysusers.d/boxagent-pipewire.conf"
for d in main bluetooth policy; do
	install -D -m 0644 "deploy/pipewire/wireplumber/$d.lua.d/51-boxagent.lua" \
		"$stage/usr/share/boxagent/pipewire/wireplumber/$d.lua.d/51-boxagent.lua"
done
# The rule that lets user boxagent mount sticks through PID 1 (SECURITY.md).
install -m 0644 deploy/systemd/50-boxagent.rules "$stage/usr/share/polkit-1/rules.d/50-boxagent.rules"
install -m 0644 deploy/deb/copyright "$doc/copyright"
install -m 0644 deploy/deb/examples/config.toml deploy/deb/examples/provision.toml "$doc/examples/"
install -m 0644 deploy/deb/lintian-overrides "$stage/usr/share/lintian/overrides/boxagent"
mkdir -p "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
	"$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/man/man1"
"$host" completion bash >"$stage/usr/share/bash-completion/completions/boxagent"
"$host" completion zsh >"$stage/usr/share/zsh/vendor-completions/_boxagent"
"$host" completion fish >"$stage/usr/share/fish/vendor_completions.d/boxagent.fish"
"$host" help --man | gzip -9n >"$stage/usr/share/man/man1/boxagent.1.gz"
chmod 0644 "$stage/usr/share/bash-completion/completions/boxagent" "$stage/usr/share/zsh/vendor-completions/_boxagent" \
	"$stage/usr/share/fish/vendor_completions.d/boxagent.fish" "$stage/usr/share/man/man1/boxagent.1.gz"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
date=$(date -u -d "@$SOURCE_DATE_EPOCH" -R)
printf 'boxagent (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- boxagent developers <boxagent@example.org>  %s\n' \
	"$VERSION" "$commit" "$date" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

for s in postinst prerm postrm; do
	install -m 0755 "deploy/deb/scripts/$s" "$stage/DEBIAN/$s"
done
size=$(find "$stage" -path "$stage/DEBIAN" -prune -o -type f -printf '%s\n' | awk '{ k += int(($1 + 1023) / 1024) } END { print k }')
cat >"$stage/DEBIAN/control" <<CONTROL
Package: boxagent
Version: $VERSION
Architecture: $deb_arch
Maintainer: boxagent developers <boxagent@example.org>
Installed-Size: $size
Depends: adduser
Recommends: bluez, dbus, wpasupplicant
Suggests: pulseaudio | pipewire-pulse
Section: net
Priority: optional
Homepage: https://github.com/boxagent/boxagent
Description: Bluetooth headsets, uplinks and firmware staging for set-top boxes
 One static binary that runs as a systemd service on set-top boxes and ARM
 dev boards: pairs Bluetooth headsets and switches them between A2DP and
 HFP/HSP through BlueZ and PulseAudio, brings up Wi-Fi and VLAN uplinks,
 and stages recovery update packages on FAT32 USB sticks. It serves a local
 control page and a command line, journals every change with the settings
 in effect, and provisions fresh images (boxagent provision).
CONTROL
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

# Same bytes every time: one mtime, sorted names (dpkg-deb sorts), owner
# root (--root-owner-group), no gzip timestamps (-n above, xz here).
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
out="$BIN/boxagent_${VERSION}_${deb_arch}.deb"
dpkg-deb --root-owner-group -Zxz -z9 --build "$stage" "$out" >/dev/null
printf '%-48s %9d bytes  sha256 %s\n' "$out" "$(stat -c %s "$out")" "$(sha256sum "$out" | cut -d' ' -f1)"
