#!/bin/sh
# mmdebstrap's customize hook for the armhf board's root (run on the host,
# $1 is the root). Part of the root's cache key: a change rebuilds it.
set -eu
R=$1
# the board never runs apt
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
echo armboard >"$R/etc/hostname"
chroot "$R" passwd -d root >/dev/null
# mmdebstrap leaves machine-id empty: D-Bus and systemd want one.
chroot "$R" systemd-machine-id-setup >/dev/null
# the stage-1 init binds the kernel's modules here
mkdir -p "$R/lib/modules"
