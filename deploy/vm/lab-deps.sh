#!/bin/sh
# lab-deps.sh: set up what the virtual board needs, once.
#
#   - the lab's Debian packages (apt-get only when one is missing),
#   - the Debian kernel that linux-image-amd64 depends on, unpacked into
#     $LAB_CACHE/kernel with a modules.dep,
#   - the initramfs that mounts the host root (busybox-static + cpio),
#   - the btvirt SCO LD_PRELOAD shim,
#   - systemd-resolved of the host's systemd, unpacked for the systemd board.
#
# Every step is keyed on its inputs by a stamp file, so a second run does
# nothing and takes seconds. LAB_CACHE defaults to .cache/lab in the repo.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LAB_CACHE:-$repo/.cache/lab}
mkdir -p "$cache"

log() { echo "lab-deps: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "cannot set up the lab: run as root (apt-get, depmod)"

# --- 1. packages ------------------------------------------------------------
# One list for the host tests and the board: deploy/test-packages (its
# tool: lines are not Debian packages).
pkgs=$(awk '!/^#/ && NF && $1 !~ /^(tool|armhf):/ { print $1 }' "$repo/deploy/test-packages")
missing=
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
updated=
if [ -n "$missing" ]; then
	log "installing:$missing"
	apt-get update -qq
	updated=1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing
fi

# --- 2. kernel --------------------------------------------------------------
# The kernel package linux-image-amd64 depends on (not -cloud: it lacks
# mac80211_hwsim, pppoe and 9p).
kpkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }'
}
resolve() {
	pkg=$(kpkg)
	[ -n "$pkg" ] || return 1
	kver=${pkg#linux-image-}
	pver=$(apt-cache show "$pkg" | awk '$1 == "Version:" { print $2; exit }')
	kstamp="$pkg $pver"
}
refresh() {
	[ -z "$updated" ] || return 1
	log "refreshing the package lists"
	apt-get update -qq
	updated=1
}
if ! resolve; then
	refresh && resolve || die "cannot resolve the kernel package of linux-image-amd64"
fi
kdir=$cache/kernel
fetch() {
	log "fetching $pkg $pver"
	rm -f "$tmp"/*.deb
	(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$pver")
}
if [ "$(cat "$kdir/.stamp" 2>/dev/null)" != "$kstamp" ]; then
	tmp=$(mktemp -d "$cache/tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# Stale lists name a kernel the mirror no longer has: refresh once.
	if ! fetch; then
		refresh && resolve && fetch || die "cannot download $pkg $pver"
	fi
	dpkg -x "$tmp"/*.deb "$tmp/root"
	# the package ships no modules.dep
	depmod -b "$tmp/root" "$kver"
	echo "$kstamp" >"$tmp/root/.stamp"
	rm -rf "$kdir"
	mv "$tmp/root" "$kdir"
	rm -rf "$tmp"
	trap - EXIT
fi
# An uncompressed vmlinux boots through PVH and skips ~3 s of xz
# decompression under TCG.
vmlinux=$cache/vmlinux-$kver
if [ ! -s "$vmlinux" ] || [ "$(cat "$vmlinux.stamp" 2>/dev/null)" != "$kstamp" ]; then
	log "extracting vmlinux"
	off=$(LC_ALL=C grep -abo -P '\xfd7zXZ\x00' "$kdir/boot/vmlinuz-$kver" | head -1 | cut -d: -f1)
	rm -f "$vmlinux" "$vmlinux.stamp"
	if [ -n "$off" ]; then
		# xz complains about the bytes after the stream; the ELF check decides.
		tail -c +$((off + 1)) "$kdir/boot/vmlinuz-$kver" | xz -dcq >"$vmlinux.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			mv "$vmlinux.tmp" "$vmlinux"
			echo "$kstamp" >"$vmlinux.stamp"
		else
			log "cannot extract vmlinux; booting the compressed kernel"
			rm -f "$vmlinux.tmp"
		fi
	fi
fi
echo "$kver" >"$cache/kernel.version.tmp" && mv "$cache/kernel.version.tmp" "$cache/kernel.version"

# --- 3. initramfs -----------------------------------------------------------
# virtio, 9p and overlay are modules in the Debian kernel, so a tiny init
# has to insmod them (in dependency order) before it can mount the host root.
sum() { cat "$@" | sha256sum | cut -c1-16; }
istamp="$kstamp $(sum "$here/initramfs/init" "$here/initramfs/build.sh" /bin/busybox "$0")"
if [ "$(cat "$cache/initramfs.stamp" 2>/dev/null)" != "$istamp" ]; then
	log "building initramfs for $kver"
	"$here/initramfs/build.sh" "$cache/initramfs.cpio.gz" /bin/busybox "$kdir" "$kver" virtio_pci 9pnet_virtio 9p overlay
	echo "$istamp" >"$cache/initramfs.stamp"
fi

# --- 4. btvirt SCO shim -----------------------------------------------------
shim=$here/shim/btvirt-sco-shim.c
sstamp="$(sum "$shim") $(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)"
if [ "$(cat "$cache/btvirt-sco-shim.stamp" 2>/dev/null)" != "$sstamp" ]; then
	log "building btvirt-sco-shim.so"
	gcc -shared -fPIC -O2 -Wall -Werror -o "$cache/btvirt-sco-shim.so.tmp" "$shim" -ldl
	mv "$cache/btvirt-sco-shim.so.tmp" "$cache/btvirt-sco-shim.so"
	echo "$sstamp" >"$cache/btvirt-sco-shim.stamp"
fi

# --- 5. systemd-resolved and resolvconf, unpacked --------------------------
# The systemd board (the host's own systemd as PID 1) runs resolved and
# resolvconf for the resolver tests (deploy/systemd/lab_resolv*_guest_test.go),
# copied into the board's RAM overlay. Neither is installed on the host:
# their postinst would point the host's /etc/resolv.conf at a file no one
# keeps here. resolved's version is the host systemd's (it depends on
# libsystemd-shared of the same version).
unpack() { # PACKAGE VERSION DIR
	if [ "$(cat "$3/.stamp" 2>/dev/null)" = "$2" ]; then
		return
	fi
	log "fetching $1 $2"
	tmp=$(mktemp -d "$cache/tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	fetchp() { (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$1=$2"); }
	if ! fetchp "$1" "$2"; then
		refresh && fetchp "$1" "$2" || die "cannot download $1 $2"
	fi
	dpkg -x "$tmp/$1"_*.deb "$tmp/root"
	echo "$2" >"$tmp/root/.stamp"
	rm -rf "$3"
	mv "$tmp/root" "$3"
	rm -rf "$tmp"
	trap - EXIT
}
unpack systemd-resolved "$(dpkg-query -W -f '${Version}' systemd)" "$cache/resolved"
rcver=$(apt-cache show resolvconf 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
if [ -z "$rcver" ]; then
	refresh
	rcver=$(apt-cache show resolvconf | awk '$1 == "Version:" { print $2; exit }')
fi
unpack resolvconf "$rcver" "$cache/resolvconf"

log "ready: kernel $kver in $cache"
