#!/bin/sh
# Stage 2 of the virtual board's PID 1: the host's own userland on the
# Debian kernel (stage 1, initramfs/init, set up the mounts).
#
# Usage (from stage 1): init.sh RESULTS_DIR
#
# Sources RESULTS_DIR/env (the knobs: environment does not cross into the
# guest), starts RESULTS_DIR/bg-*.sh in the background, runs
# RESULTS_DIR/cmd.sh (output in RESULTS_DIR/output.log, exit status in
# RESULTS_DIR/exit) or, with LAB_INTERACTIVE=1, a shell on the serial
# console, then powers off. Knobs it reads itself: LAB_PATH (prepended to
# PATH), LAB_NET=user (eth0 on QEMU user networking), LAB_WORKDIR,
# LAB_INTERACTIVE, LAB_TERM/LAB_ROWS/LAB_COLS (the console shell's terminal),
# LAB_TTY (the serial console's device).
RESULTS=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 LAB_GUEST=1 LAB_RESULTS="$RESULTS"

up() { cut -d' ' -f1 /proc/uptime; }
echo "lab: init start uptime=$(up)" >/dev/console
up >"$RESULTS/boot"

mkdir -p /dev/pts /dev/shm /run/dbus /run/user/0 /var/lib/dbus "$HOME"
mount -t devpts -o ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
chmod 700 /run/user/0
hostname vlab
ip link set lo up
# The armhf root is an image's: mmdebstrap leaves /etc/machine-id empty for
# the first boot to fill, which dbus-uuidgen --ensure refuses.
[ -s /etc/machine-id ] || dbus-uuidgen >/etc/machine-id

[ -f "$RESULTS/env" ] && . "$RESULTS/env"
[ -n "${LAB_PATH:-}" ] && export PATH="$LAB_PATH:$PATH"
# the serial console: ttyS0 on the amd64 board, ttyAMA0 on armhf's virt
TTY=/dev/${LAB_TTY:-ttyS0}

# LAB_INIT=systemd (vm.Options.Systemd): systemd becomes PID 1 and runs the
# command from a unit (systemd-board.sh).
if [ "${LAB_INIT:-}" = systemd ]; then
	exec /bin/sh "${0%/init.sh}/systemd-board.sh" setup "$RESULTS"
fi

if [ "${LAB_NET:-}" = user ]; then
	# QEMU user networking (slirp): fixed addresses.
	modprobe virtio_net
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
	echo "nameserver 10.0.2.3" >/etc/resolv.conf
fi

# A shell's poweroff/reboot would signal PID 1, which is this script: end the
# run the way it ends anyway.
mkdir -p /usr/local/sbin
for c in poweroff reboot halt; do
	printf '#!/bin/sh\nsync\nexec busybox poweroff -f\n' >/usr/local/sbin/$c
	chmod 755 /usr/local/sbin/$c
done

cd "${LAB_WORKDIR:-/}" || cd /
for bg in "$RESULTS"/bg-*.sh; do
	[ -f "$bg" ] || continue
	setsid sh "$bg" >"${bg%.sh}.log" 2>&1 </dev/null &
done

rc=0
if [ "${LAB_INTERACTIVE:-}" = 1 ]; then
	if [ -f "$RESULTS/cmd.sh" ]; then
		setsid -c sh "$RESULTS/cmd.sh" <"$TTY" >"$TTY" 2>&1
	else
		export TERM="${LAB_TERM:-vt220}"
		[ -n "${LAB_ROWS:-}" ] && stty -F "$TTY" rows "$LAB_ROWS" cols "$LAB_COLS"
		echo "lab: virtual board ready; 'poweroff' or Ctrl-C ends it" >"$TTY"
		sh=/bin/sh
		[ -x /bin/bash ] && sh=/bin/bash norc=--norc # bash-completion takes seconds under TCG
		PS1="vlab# " setsid -c $sh $norc -i <"$TTY" >"$TTY" 2>&1
	fi
	rc=$?
elif [ -f "$RESULTS/cmd.sh" ]; then
	sh "$RESULTS/cmd.sh" >"$RESULTS/output.log" 2>&1 </dev/null
	rc=$?
fi
echo "$rc" >"$RESULTS/exit.tmp" && mv "$RESULTS/exit.tmp" "$RESULTS/exit"
echo "lab: exit status $rc uptime=$(up)" >/dev/console
sync
exec busybox poweroff -f
