#!/bin/sh
# Checks the units with systemd-analyze: exposure of boxagent.service and
# verify of every unit. verify wants ExecStart's binary to exist, so the
# units are checked as copies pointing at a freshly built binary.
# Usage: deploy/systemd/check.sh  (from the repository root)
set -eu
command -v systemd-analyze >/dev/null || { echo "check.sh: systemd-analyze missing: apt-get install systemd" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$tmp/boxagent" ./cmd/boxagent
for u in deploy/systemd/*.service; do
	sed "s|/usr/bin/boxagent|$tmp/boxagent|" "$u" >"$tmp/$(basename "$u")"
done
echo "== systemd-analyze security --offline=true deploy/systemd/boxagent.service"
systemd-analyze security --offline=true --no-pager deploy/systemd/boxagent.service | tail -n 1
echo "== systemd-analyze verify"
(cd "$tmp" && systemd-analyze verify ./*.service) && echo "verify: clean"
