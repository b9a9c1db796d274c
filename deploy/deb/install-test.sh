#!/bin/sh
# Installs and purges a .deb in a throwaway overlay of this machine's own
# root (private mount namespace, upper layer on tmpfs): the maintainer
# scripts run for real, the machine is left untouched. Needs root with the
# right to mount; run by check.sh for the host's architecture.
# Usage: deploy/deb/install-test.sh PACKAGE.deb
set -eu
deb=$(readlink -f "$1")
ovl=$(mktemp -d)
trap 'rmdir "$ovl" 2>/dev/null || true' EXIT
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m sh -eu -c '
ovl=$1 deb=$2
mount -t tmpfs tmpfs "$ovl"
mkdir -p "$ovl/up" "$ovl/work" "$ovl/m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/up,workdir=$ovl/work" "$ovl/m"
m=$ovl/m
mount --bind /proc "$m/proc"
mount --bind /dev "$m/dev"
cp "$deb" "$m/tmp/boxagent-test.deb"
# A config provisioned before the package, as provision leaves it in an
# image without the user: the package must hand it to the agent.
rm -rf "$m/etc/boxagent" "$m/var/lib/boxagent"
mkdir -p "$m/etc/boxagent"
printf "board = \"auto\"\n" >"$m/etc/boxagent/config.toml"
chmod 0644 "$m/etc/boxagent/config.toml"
# /etc/resolv.conf a link to nothing, as Buildroot makes it (to /tmp): no program
# keeps it, so the package links it to the agent file.
rm -f "$m/etc/resolv.conf"
ln -s ../tmp/no-resolv.conf "$m/etc/resolv.conf"
chroot "$m" sh -eu -c "
fail() { echo \"install-test: \$*\" >&2; exit 1; }
dpkg -i /tmp/boxagent-test.deb >/dev/null 2>&1 || fail \"dpkg -i failed\"
getent passwd boxagent >/dev/null || fail \"no user boxagent\"
for g in boxagent bluetooth netdev pulse-access; do getent group \$g >/dev/null || fail \"no group \$g\"; done
getent group pulse-access | cut -d: -f4 | tr , \"\\n\" | grep -qx boxagent || fail \"boxagent is not a member of pulse-access in /etc/group\"
[ \"\$(stat -c %U:%a /etc/boxagent /etc/boxagent/config.toml | tr \"\\n\" \" \")\" = \"boxagent:700 boxagent:600 \" ] || fail \"/etc/boxagent not the agent s: \$(stat -c %U:%a /etc/boxagent /etc/boxagent/config.toml)\"
[ -L /etc/systemd/system/multi-user.target.wants/boxagent.service ] || fail \"boxagent.service not enabled\"
[ -L /etc/systemd/system/multi-user.target.wants/boxagent-firstboot.service ] || fail \"boxagent-firstboot.service not enabled\"
for u in boxagent-pulseaudio boxagent-pipewire boxagent-wireplumber boxagent-pipewire-pulse; do
	[ -f /lib/systemd/system/\$u.service ] || fail \"no \$u.service\"
	[ ! -e /etc/systemd/system/multi-user.target.wants/\$u.service ] || fail \"\$u.service enabled: a sound server is the admin s choice\"
done
[ \"\$(readlink /etc/resolv.conf)\" = /run/boxagent/resolv.conf ] || fail \"/etc/resolv.conf not linked to the agent s: \$(readlink /etc/resolv.conf)\"
dpkg --purge boxagent >/dev/null 2>&1 || fail \"dpkg --purge failed\"
[ ! -e /etc/boxagent ] || fail \"purge left /etc/boxagent\"
[ ! -e /etc/systemd/system/multi-user.target.wants/boxagent.service ] || fail \"purge left the unit enabled\"
[ ! -L /etc/resolv.conf ] || fail \"purge left the /etc/resolv.conf link\"
"
' sh "$ovl" "$deb"
echo "install-test: $(basename "$deb"): installs (user, groups, pulse-access membership, /etc/boxagent 0700 boxagent, units enabled, the sound servers shipped and not enabled, /etc/resolv.conf linked) and purges cleanly"
