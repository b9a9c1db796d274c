#!/bin/sh
# lab-deps-armhf.sh: set up the armhf virtual board, once per machine.
#
#   - the host packages (deploy/test-packages, through lab-deps.sh's list),
#     the armhf architecture in dpkg, qemu-arm's binfmt handler,
#   - the kernel linux-image-armmp:armhf depends on, unpacked, plus
#     hci_vhci and snd-dummy, which armmp lacks, built out of tree against
#     Debian's own headers and source with gcc-arm-linux-gnueabihf,
#   - the stage-1 initramfs (armhf busybox-static, virtio/9p/overlay),
#   - the btvirt SCO shim for armhf,
#   - the armhf root: mmdebstrap --arch=armhf of the armhf: lines of
#     deploy/test-packages, in root-KEY where KEY hashes those lines and the
#     kernel version.
#
# Everything goes to $LAB_ARMHF_CACHE (default /var/cache/boxagent-lab/armhf),
# outside the checkout: a fresh clone on the same machine finds it. Every
# step is keyed on its inputs; a second run does nothing. The board reads
# $LAB_ARMHF_CACHE/board.env (vm.FindArmhfCache).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LAB_ARMHF_CACHE:-/var/cache/boxagent-lab/armhf}
mkdir -p "$cache"

log() { echo "lab-deps-armhf: $*" >&2; }
die() {
	log "$*"
	exit 1
}
[ "$(id -u)" = 0 ] || die "cannot set up the armhf board: run as root (apt-get, binfmt, mmdebstrap)"
sum() { cat "$@" | sha256sum | cut -c1-16; }

# --- 1. host packages, armhf in dpkg, binfmt ---------------------------------
# The host list is lab-deps.sh's (deploy/test-packages); the armhf package
# lists come with the first apt-get update after adding the architecture.
if ! dpkg --print-foreign-architectures | grep -qx armhf; then
	log "adding the armhf architecture"
	dpkg --add-architecture armhf
	rm -f "$cache/lists.stamp"
fi
if [ ! -f "$cache/lists.stamp" ] || ! apt-cache show linux-image-armmp:armhf >/dev/null 2>&1; then
	# A mirror caught mid-sync fails one index ("File has unexpected size
	# ... Mirror sync in progress?"); apt keeps the others: go on and let
	# the resolution below tell.
	apt-get update -qq || log "apt-get update reported errors (a mirror mid-sync?); going on with the lists it has"
	touch "$cache/lists.stamp"
fi
pkgs=$(awk '!/^#/ && NF && $1 !~ /:/ { print $1 }' "$repo/deploy/test-packages")
missing=
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	log "installing:$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing
fi
# Without systemd on the host binfmt_misc may not be mounted, and
# update-binfmts then reports qemu-arm disabled.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-arm ] || update-binfmts --enable qemu-arm

# --- 2. kernel and the two missing modules -----------------------------------
pkg=$(apt-cache depends linux-image-armmp:armhf 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-armmp(:armhf)?$/ { sub(/:armhf$/, "", $2); print $2; exit }')
[ -n "$pkg" ] || die "cannot resolve the kernel package of linux-image-armmp:armhf"
kver=${pkg#linux-image-}   # 6.1.0-N-armmp
abi=${kver%-armmp}         # 6.1.0-N
series=${kver%%.0-*}       # 6.1
pver=$(apt-cache show "$pkg:armhf" | awk '$1 == "Version:" { print $2; exit }')
xmod=$here/armhf/Kbuild
kstamp="$pkg $pver $(sum "$xmod")"
kdir=$cache/kernel-$kver
dl() { (cd "$1" && shift && apt-get download -qq -o APT::Sandbox::User=root "$@"); }
if [ "$(cat "$kdir/.stamp" 2>/dev/null)" != "$kstamp" ]; then
	log "fetching $pkg $pver and its headers, kbuild and source"
	tmp=$(mktemp -d "$cache/tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# Headers, kbuild (amd64: fixdep and modpost run here) and source of
	# the very version of the image; vermagic must match.
	dl "$tmp" "$pkg:armhf=$pver" "linux-headers-$abi-armmp:armhf=$pver" "linux-headers-$abi-common=$pver" \
		"linux-kbuild-$series=$pver" "linux-source-$series=$pver"
	dpkg -x "$tmp"/linux-image-*_armhf.deb "$tmp/root"
	mkdir -p "$tmp/kb" "$tmp/x"
	for d in "$tmp"/linux-headers-*.deb "$tmp"/linux-kbuild-*.deb; do dpkg -x "$d" "$tmp/kb"; done
	h=$tmp/kb/usr/src/linux-headers-$kver
	# the flavour's Makefile includes the common one by absolute path
	sed -i "s|^include /usr/src/|include $tmp/kb/usr/src/|" "$h/Makefile"
	dpkg-deb --fsys-tarfile "$tmp"/linux-source-*.deb |
		tar -xO "./usr/src/linux-source-$series.tar.xz" | xz -dc -T0 |
		tar -x -C "$tmp/x" --strip-components=3 \
			"linux-source-$series/drivers/bluetooth/hci_vhci.c" "linux-source-$series/sound/drivers/dummy.c"
	cp "$xmod" "$tmp/x/Kbuild"
	log "building hci_vhci and snd-dummy for $kver"
	nice make -s -C "$h" M="$tmp/x" ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf- modules >"$tmp/make.log" 2>&1 ||
		die "cannot build the extra modules: $(tail -20 "$tmp/make.log")"
	mkdir -p "$tmp/root/lib/modules/$kver/updates"
	for m in hci_vhci snd-dummy; do
		arm-linux-gnueabihf-strip --strip-debug -o "$tmp/root/lib/modules/$kver/updates/$m.ko" "$tmp/x/$m.ko"
	done
	depmod -b "$tmp/root" "$kver" # the package ships no modules.dep
	echo "$kstamp" >"$tmp/root/.stamp"
	rm -rf "$kdir"
	mv "$tmp/root" "$kdir"
	rm -rf "$tmp"
	trap - EXIT
fi

# --- 3. initramfs (armhf busybox; the amd64 board's init) --------------------
bbver=$(apt-cache show busybox-static:armhf | awk '$1 == "Version:" { print $2; exit }')
istamp="$kstamp busybox-static $bbver $(sum "$here/initramfs/init" "$here/initramfs/build.sh")"
initrd=$cache/initramfs-$kver.cpio.gz
if [ "$(cat "$initrd.stamp" 2>/dev/null)" != "$istamp" ]; then
	log "building the initramfs for $kver"
	w=$(mktemp -d "$cache/tmp.XXXXXX")
	trap 'rm -rf "$w"' EXIT
	dl "$w" "busybox-static:armhf=$bbver"
	dpkg -x "$w"/busybox-static_*_armhf.deb "$w/bb"
	# virtio_mmio too: the virt machine's virtio-*-device transports.
	"$here/initramfs/build.sh" "$initrd" "$w/bb/bin/busybox" "$kdir" "$kver" virtio_mmio virtio_pci 9pnet_virtio 9p overlay
	echo "$istamp" >"$initrd.stamp"
	rm -rf "$w"
	trap - EXIT
fi

# --- 4. btvirt SCO shim for armhf --------------------------------------------
shim=$here/shim/btvirt-sco-shim.c
sstamp="$(sum "$shim") $(arm-linux-gnueabihf-gcc -dumpfullversion)"
if [ "$(cat "$cache/btvirt-sco-shim.stamp" 2>/dev/null)" != "$sstamp" ]; then
	log "building btvirt-sco-shim.so for armhf"
	arm-linux-gnueabihf-gcc -shared -fPIC -O2 -Wall -Werror -o "$cache/btvirt-sco-shim.so.tmp" "$shim" -ldl
	mv "$cache/btvirt-sco-shim.so.tmp" "$cache/btvirt-sco-shim.so"
	echo "$sstamp" >"$cache/btvirt-sco-shim.stamp"
fi

# --- 5. the armhf root -------------------------------------------------------
rootpkgs=$(awk '!/^#/ && $1 ~ /^armhf:/ { sub(/^armhf:/, "", $1); print $1 }' "$repo/deploy/test-packages" | sort)
[ -n "$rootpkgs" ] || die "deploy/test-packages lists no armhf: packages"
rkey=$( (echo "$rootpkgs" && echo "$kver" && cat "$here/armhf/root-hooks.sh") | sha256sum | cut -c1-16)
root=$cache/root-$rkey
if [ ! -f "$root.done" ]; then
	log "building the armhf root $root (mmdebstrap under qemu-arm: minutes)"
	sources=/etc/apt/sources.list.d/debian.sources
	[ -f "$sources" ] || sources=/etc/apt/sources.list
	rm -rf "$root" "$root.tmp"
	build() {
		nice mmdebstrap --quiet --arch=armhf --variant=apt --include="$(echo $rootpkgs | tr ' ' ,)" \
			--dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--customize-hook="sh $here/armhf/root-hooks.sh \"\$1\"" \
			bookworm "$root.tmp" "$1"
	}
	if ! build "$sources"; then
		# The security suite's armhf index caught mid-sync stops mmdebstrap
		# ("File has unexpected size ... Mirror sync in progress?"): the main
		# suites are enough for a lab root. Logged, so it is seen.
		log "mmdebstrap failed with $sources; again without the security suite"
		awk -v RS= -v ORS='\n\n' '!/security/' "$sources" >"$cache/main.sources"
		rm -rf "$root.tmp"
		build "$cache/main.sources" || die "cannot build the armhf root"
	fi
	mv "$root.tmp" "$root"
	du -sm "$root" | cut -f1 >"$root.done"
	# Older roots stay: a board booted from one may still be running (they
	# are 300 MB each; rm -rf them once no board runs).
	for old in "$cache"/root-*.done; do
		[ "$old" = "$root.done" ] || log "an older root is left: ${old%.done}"
	done
fi

{
	echo "KERNEL_VERSION=$kver"
	echo "KERNEL_ROOT=$kdir"
	echo "KERNEL=$kdir/boot/vmlinuz-$kver"
	echo "INITRD=$initrd"
	echo "ROOT=$root"
	echo "BTVIRT_SHIM=$cache/btvirt-sco-shim.so"
} >"$cache/board.env.tmp"
mv "$cache/board.env.tmp" "$cache/board.env"
log "ready: kernel $kver, root $root ($(cat "$root.done") MB)"
