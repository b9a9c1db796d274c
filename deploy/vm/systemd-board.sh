#!/bin/sh
# The virtual board with systemd as PID 1 (knob LAB_INIT=systemd,
# vm.Options.Systemd): the host's own /lib/systemd/systemd boots a small
# target whose one job is the run's command.
#
# Usage:
#   systemd-board.sh setup RESULTS   from init.sh (PID 1, knobs sourced):
#                                    writes the units into the RAM overlay,
#                                    masks what a quick boot does not need,
#                                    and execs systemd
#   systemd-board.sh run RESULTS     lab-run.service: runs RESULTS/cmd.sh as
#                                    init.sh does, writes RESULTS/exit and
#                                    powers off
#
# Knobs (besides init.sh's): LAB_PERSIST="/etc/boxagent /var/lib/boxagent"
# binds a folder of the ext4 disk with serial LAB_PERSISTDISK (the results
# folder's persist.img) over each path, so a second boot with the same
# results folder finds what the first wrote; LAB_BOOTDISK names the disk
# (vm.Options.BootImage) whose first FAT partition is mounted on
# LAB_BOOTDIR (default /boot) before systemd starts, as an image's fstab
# would.
set -u
MODE=$1
RESULTS=$2
SELF=$(readlink -f "$0")
up() { cut -d' ' -f1 /proc/uptime; }

# disk SERIAL: the virtio disk QEMU gave that serial (no udev yet for
# /dev/disk/by-id; virtio_blk has probed its disks when modprobe returns).
disk() {
	for d in /sys/block/vd*; do
		s=
		read -r s <"$d/serial" 2>/dev/null
		[ "$s" = "$1" ] && echo "/dev/${d##*/}" && return
	done
	echo "/dev/no-disk-with-serial-$1"
}

setup() {
	U=/etc/systemd/system
	# lab.target and the masks (see systemd-units/README); then the run's
	# unit, written with builtins only.
	cp -a "${SELF%/*}/systemd-units/." $U/
	# Generators run at every start of PID 1 and scan /etc/init.d, fstab,
	# the GPT...: seconds under TCG for nothing here. All are masked.
	mkdir -p /etc/systemd/system-generators
	cp -a "${SELF%/*}/systemd-generators/." /etc/systemd/system-generators/
	# The host root is a container's: its /.dockerenv would make systemd
	# believe it runs in Docker (and skip what a box runs). The board is a
	# VM; say so.
	rm -f /.dockerenv
	{
		echo "[Unit]"
		echo "Description=virtual board: the run's command"
		echo "Wants=dbus.socket systemd-udevd.service"
		echo "After=basic.target dbus.socket systemd-udevd.service"
		echo "[Service]"
		echo "Type=exec"
		echo "ExecStart=/bin/sh $SELF run $RESULTS"
		# The command's output goes to the results share (run redirects
		# it); the console keeps systemd's own lines.
		echo "StandardOutput=journal+console"
		echo "StandardError=journal+console"
	} >$U/lab-run.service
	if [ -n "${LAB_BOOTDISK:-}${LAB_PERSISTDISK:-}" ]; then
		modprobe -a virtio_blk ext4 vfat nls_cp437 nls_iso8859_1
	fi
	if [ -n "${LAB_PERSISTDISK:-}" ]; then
		mkdir -p /lab-persist
		mount -t ext4 "$(disk "$LAB_PERSISTDISK")" /lab-persist ||
			echo "lab: cannot mount the persistent disk" >/dev/console
		for p in ${LAB_PERSIST:-}; do
			src="/lab-persist/$(echo "${p#/}" | tr / _)"
			mkdir -p "$src" "$p"
			mount --bind "$src" "$p" || echo "lab: cannot bind $src on $p" >/dev/console
		done
	fi
	if [ -n "${LAB_BOOTDISK:-}" ]; then
		dir=${LAB_BOOTDIR:-/boot}
		mkdir -p "$dir"
		mount -t vfat -o rw,nosuid,nodev,noexec,flush "$(disk "$LAB_BOOTDISK")1" "$dir" ||
			echo "lab: cannot mount the boot image on $dir" >/dev/console
	fi
	echo "lab: systemd as PID 1 uptime=$(up)" >/dev/console
	exec /lib/systemd/systemd --unit=lab.target --show-status=no
}

run() {
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	export HOME=/root LANG=C.UTF-8 LAB_GUEST=1 LAB_RESULTS="$RESULTS"
	[ -f "$RESULTS/env" ] && . "$RESULTS/env"
	[ -n "${LAB_PATH:-}" ] && export PATH="$LAB_PATH:$PATH"
	TTY=/dev/${LAB_TTY:-ttyS0}
	echo "lab: systemd booted uptime=$(up)" >/dev/console
	up >"$RESULTS/systemd-boot"
	cd "${LAB_WORKDIR:-/}" || cd /
	for bg in "$RESULTS"/bg-*.sh; do
		[ -f "$bg" ] || continue
		setsid sh "$bg" >"${bg%.sh}.log" 2>&1 </dev/null &
	done
	rc=0
	if [ "${LAB_INTERACTIVE:-}" = 1 ]; then
		echo "lab: systemd board ready; 'poweroff' or Ctrl-C ends it" >"$TTY"
		setsid -c /bin/sh -i <"$TTY" >"$TTY" 2>&1
		rc=$?
	elif [ -f "$RESULTS/cmd.sh" ]; then
		sh "$RESULTS/cmd.sh" >"$RESULTS/output.log" 2>&1 </dev/null
		rc=$?
	fi
	echo "$rc" >"$RESULTS/exit.tmp" && mv "$RESULTS/exit.tmp" "$RESULTS/exit"
	echo "lab: exit status $rc uptime=$(up)" >/dev/console
	sync
	# --force: no orderly stop of every unit (seconds under TCG), but
	# systemd still kills everything and unmounts the file systems, so
	# a FAT boot image is left clean.
	exec systemctl poweroff --force
}

case $MODE in
setup) setup ;;
run) run ;;
*)
	echo "usage: systemd-board.sh setup|run RESULTS" >&2
	exit 2
	;;
esac
