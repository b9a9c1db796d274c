#!/bin/sh
# The daemons and virtual radios of `make demo`, started inside the virtual
# board before `boxagent serve` (which it then becomes):
#
#   system bus           dbus-daemon --system
#   Bluetooth            btvirt -l2 (two virtual controllers, with the SCO
#                        shim) under one bluetoothd: hci0 is the box, hci1
#                        plays the headset's controller
#   audio                snd-dummy card and PulseAudio in system mode with
#                        the project's deploy/pulseaudio/system.pa
#   Wi-Fi                mac80211_hwsim: hostapd on wlan0 serves the WPA2
#                        network "boxagent-demo" (password boxagent-demo),
#                        wpa_supplicant -u drives wlan1 for the agent
#
# The agent follows each daemon over D-Bus as it appears, so nothing here
# waits for another daemon to be ready. Logs go to $LAB_RESULTS/demo-*.log.
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
logs=${LAB_RESULTS:-/tmp}

modprobe -a hci_vhci rfcomm bnep mac80211_hwsim snd-dummy 8021q veth 2>>"$logs/demo-modprobe.log"

dbus-uuidgen --ensure
mkdir -p /run/dbus
dbus-daemon --system --fork

# The kernel gives a new controller 2 s to answer its HCI Reset; btvirt
# answers hci0's only after it made hci1, which on the first start of a
# boot waits for the kernel to load and build ecb(aes) and cmac(aes) for
# btvirt's AF_ALG sockets (longer than 2 s under TCG). Build them first, as
# the lab fixture does (deploy/vm/guest/bluetooth.go, prepareBtvirt).
modprobe -a af_alg algif_skcipher algif_hash ecb cmac 2>>"$logs/demo-modprobe.log"
# (The armhf root has no python3: there hci0 may miss its HCI Reset, and
# the demo then has one controller; the lab fixtures warm up in Go.)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import socket
for t, n in (("skcipher", "ecb(aes)"), ("hash", "cmac(aes)")):
    socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0).bind((t, n))' 2>>"$logs/demo-modprobe.log"

shim=${LAB_BTVIRT_SHIM:-$repo/.cache/lab/btvirt-sco-shim.so}
if [ -f "$shim" ]; then
	LD_PRELOAD=$shim btvirt -l2 >"$logs/demo-btvirt.log" 2>&1 &
else
	btvirt -l2 >"$logs/demo-btvirt.log" 2>&1 &
fi
# bluetoothd misses a controller that btvirt is still bringing up, so it
# starts once both exist. This demo script waits with a deadline; the agent
# itself follows BlueZ's signals.
deadline() { # deadline SECONDS TEST...: wait until TEST succeeds
	n=$(($1 * 10)); shift
	while ! "$@" 2>/dev/null; do
		n=$((n - 1)); [ $n -gt 0 ] || return 1
		sleep 0.1
	done
}
deadline 15 test -e /sys/class/bluetooth/hci1 || echo "demo: btvirt gave no hci1" >&2
# -d (debug log) slows bluetoothd down enough: without it BlueZ 5.66's
# AVDTP race between the box's A2DP setup and the headset side's own
# discovery (both are this one bluetoothd; "Transaction label doesn't
# match", fixed upstream in 2024) left the demo headset without music in
# 4 runs of 5; with it, none of 4 (docs/FLAKES.md). A real headset runs no
# BlueZ and is not affected.
/usr/libexec/bluetooth/bluetoothd -n -d >"$logs/demo-bluetoothd.log" 2>&1 &
# The "headset" controller: powered, pairable and discoverable, so that
# `boxagent bt scan` on hci0 finds it.
(
	deadline 30 busctl introspect org.bluez /org/bluez/hci1 >/dev/null &&
		for p in Powered Pairable Discoverable; do
			busctl set-property org.bluez /org/bluez/hci1 org.bluez.Adapter1 $p b true
		done
) >"$logs/demo-headset.log" 2>&1 &

# The shipped system.pa, with one change for the demo: this one PulseAudio
# also serves hci1, the headset's side, where module-bluetooth-policy would
# loop what the headset receives (the box's music, its call) back into the
# default sink, which after `audio mode … music` is the headset itself: a
# feedback loop. The demo's headset side plays nothing back.
# --realtime=no as in the lab fixture (deploy/vm/guest/pulseaudio.go): under
# TCG its real-time threads starve its main loop, which answers BlueZ's
# A2DP SetConfiguration.
mkdir -p /run/demo
cat >/run/demo/system.pa <<EOP
.include $repo/deploy/pulseaudio/system.pa
.nofail
unload-module module-bluetooth-policy
load-module module-bluetooth-policy auto_switch=0 a2dp_source=false ag=false
EOP
pulseaudio --system --daemonize=no --disallow-exit --exit-idle-time=-1 --realtime=no -n \
	-F /run/demo/system.pa --log-target=file:"$logs/demo-pulseaudio.log" &
# The agent's play-and-record test streams over the native protocol, which
# asks for PulseAudio's cookie (deploy/pulseaudio/boxagent-pulse.conf).
export PULSE_COOKIE=/run/pulse/.config/pulse/cookie

mkdir -p /run/hostapd
cat >/run/hostapd/demo.conf <<EOC
interface=wlan0
driver=nl80211
ctrl_interface=/run/hostapd
ssid=boxagent-demo
hw_mode=g
channel=6
wpa=2
wpa_key_mgmt=WPA-PSK
rsn_pairwise=CCMP
wpa_passphrase=boxagent-demo
EOC
hostapd -B -P /run/hostapd.pid -f "$logs/demo-hostapd.log" /run/hostapd/demo.conf
wpa_supplicant -u -O /run/wpa_supplicant -B -P /run/wpa_supplicant.pid -f "$logs/demo-wpa_supplicant.log"

echo "demo: bluetoothd, PulseAudio, hostapd (boxagent-demo) and wpa_supplicant are up; starting boxagent" >&2
exec "$@"
