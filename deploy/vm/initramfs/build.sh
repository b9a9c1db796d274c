#!/bin/sh
# build.sh: the virtual board's stage-1 initramfs, for lab-deps.sh (amd64)
# and lab-deps-armhf.sh.
#
#   build.sh OUT BUSYBOX KROOT KVER MODULE...
#
# OUT gets busybox (a static one of the board's architecture), the modules
# named and their dependencies in load order (mods/order), and init (this
# folder's). virtio, 9p and overlay are modules in Debian's kernels, so init
# must insmod them before it can mount a root.
set -eu
out=$1 busybox=$2 kroot=$3 kver=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
w=$(mktemp -d "$out.XXXXXX")
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/bin" "$w/dev" "$w/proc" "$w/sys" "$w/lower" "$w/rw" "$w/newroot" "$w/host" "$w/mods"
cp "$busybox" "$w/bin/busybox"
for a in sh mount mkdir insmod switch_root cat echo poweroff chmod sed; do
	ln -s busybox "$w/bin/$a"
done
for m in "$@"; do
	modprobe -d "$kroot" -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
	cp "$ko" "$w/mods/"
	basename "$ko" >>"$w/mods/order"
done
if [ ! -s "$w/mods/order" ]; then
	echo "initramfs: cannot find the modules $* in $kroot" >&2
	exit 1
fi
cp "$here/init" "$w/init"
chmod 755 "$w/init"
(cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
