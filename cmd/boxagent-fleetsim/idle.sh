#!/bin/bash
# What a real box pays for the fleet link: the agent's RSS and its idle
# wakeups (context switches of all its threads) over a quiet minute, with
# and without [fleet], against a mosquitto on loopback (plain MQTT: the
# agent allows it to loopback only). Prints one line per case.
#   cmd/boxagent-fleetsim/idle.sh [seconds]
set -euo pipefail
secs=${1:-60}
bin=$(mktemp -d /tmp/fleet-idle.XXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$bin"' EXIT
go build -o "$bin/boxagent" ./cmd/boxagent
port=$((20000 + RANDOM % 20000))
printf 'listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nlog_dest none\n' "$port" >"$bin/m.conf"
mosquitto -c "$bin/m.conf" & sleep 0.5
key=$(head -c 32 /dev/urandom | base64)   # any 32 bytes stand for an operator key here
switches() { local n=0; for t in /proc/$1/task/*; do n=$((n + $(awk '/ctxt_switches/ { s += $2 } END { print s }' "$t/status"))); done; echo $n; }
for fleet in off on; do
	root="$bin/root-$fleet"; mkdir -p "$root/etc/boxagent"
	printf 'board = "auto"\n' >"$root/etc/boxagent/config.toml"
	[ $fleet = on ] && printf '[fleet]\nbrokers = ["mqtt://127.0.0.1:%d"]\nid = "idle-box"\nroutes = ["GET /api/v1/status"]\noperator_keys = ["%s"]\nkeepalive = 60\n' "$port" "$key" >>"$root/etc/boxagent/config.toml"
	"$bin/boxagent" serve --root "$root" --listen 127.0.0.1:0 2>"$bin/log-$fleet" & pid=$!
	sleep 10
	a=$(switches $pid)
	sleep "$secs"
	b=$(switches $pid)
	rss=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)
	echo "fleet $fleet: RSS $rss kB, $((b - a)) context switches in ${secs} s, threads $(ls /proc/$pid/task | wc -l)"
	kill $pid; wait $pid 2>/dev/null || true
done
