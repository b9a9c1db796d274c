#!/bin/bash
# What a real box pays for the fleet link: the agent's RSS and its idle
# wakeups (voluntary context switches of all its threads: each is a
# thread going to sleep, then woken; preemptions by a busy machine are
# not counted), with and without
# [fleet], against a mosquitto on loopback (plain MQTT: the agent allows
# it to loopback only). Both agents run side by side and are watched over
# the same seconds; the watch begins 45 s after their start (the agent's
# start-up retries end ~30 s in) and should span whole 2-minute periods
# of the Go runtime's forced collection, which both have. As root it runs
# in a network namespace and /run of its own, as make bench does: other
# programs' link changes and files in /run wake the agent's watches.
#   cmd/boxagent-fleetsim/idle.sh [seconds [keepalive]]
set -euo pipefail
if [ "$(id -u)" = 0 ] && [ -z "${IDLE_SH_NS:-}" ]; then
	exec env IDLE_SH_NS=1 unshare -n -m --propagation private bash -c \
		'ip link set lo up && mount -t tmpfs -o mode=0755,size=16m tmpfs /run && exec "$0" "$@"' "$0" "$@"
fi
secs=${1:-240}
keepalive=${2:-60}
bin=$(mktemp -d /tmp/fleet-idle.XXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$bin"' EXIT
go build -o "$bin/boxagent" ./cmd/boxagent
port=$((20000 + RANDOM % 20000))
printf 'listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nlog_dest none\n' "$port" >"$bin/m.conf"
mosquitto -c "$bin/m.conf" & sleep 0.5
key=$(head -c 32 /dev/urandom | base64)   # any 32 bytes stand for an operator key here
wakeups() { local n=0; for t in /proc/$1/task/*; do n=$((n + $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status"))); done; echo $n; }
declare -A pid a
for fleet in off on; do
	root="$bin/root-$fleet"; mkdir -p "$root/etc/boxagent"
	printf 'board = "auto"\n' >"$root/etc/boxagent/config.toml"
	[ $fleet = on ] && printf '[fleet]\nbrokers = ["mqtt://127.0.0.1:%d"]\nid = "idle-box"\nroutes = ["GET /api/v1/status"]\noperator_keys = ["%s"]\nkeepalive = %d\n' "$port" "$key" "$keepalive" >>"$root/etc/boxagent/config.toml"
	"$bin/boxagent" serve --root "$root" --listen 127.0.0.1:0 2>"$bin/log-$fleet" & pid[$fleet]=$!
done
sleep 45
for fleet in off on; do a[$fleet]=$(wakeups ${pid[$fleet]}); done
sleep "$secs"
for fleet in off on; do
	p=${pid[$fleet]}
	b=$(wakeups $p)
	rss=$(awk '/VmRSS/ { print $2 }' /proc/$p/status)
	echo "fleet $fleet (keepalive $keepalive s): RSS $rss kB, $((b - ${a[$fleet]})) wakeups in ${secs} s, threads $(ls /proc/$p/task | wc -l)"
done
