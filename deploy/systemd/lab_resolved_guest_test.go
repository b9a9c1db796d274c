//go:build lab

package systemd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// envResolved is the unpacked systemd-resolved package of the host's
// systemd (lab-deps.sh's step 5), copied into the board.
const envResolved = "SD_RESOLVED"

// TestGuestResolvedUnit: where systemd-resolved runs, the hardened agent
// (user boxagent, allowed by the package's polkit rule) gives it each
// uplink's DNS servers and search domains per link: a static uplink's are
// on its link in resolved; after resolved restarts (it forgets every
// link) the agent tells it again, followed by NameOwnerChanged; `net
// uplink del` takes them back; the doctor names resolved.
func TestGuestResolvedUnit(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	src := os.Getenv(envResolved)
	if _, err := os.Stat(filepath.Join(src, "lib/systemd/systemd-resolved")); err != nil {
		t.Fatalf("no unpacked systemd-resolved in %q (make lab-deps): %v", src, err)
	}
	// As the package's postinst would, without touching the host: the
	// board's root is a RAM overlay.
	sh(t, `set -e
# /lib is a link to usr/lib (merged /usr): keep it.
tar -C "$R" -cf - etc lib usr | tar -C / -xf - --keep-directory-symlink
systemd-sysusers /usr/lib/sysusers.d/systemd-resolve.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/systemd-resolve.conf || true
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
systemctl daemon-reload
systemctl restart polkit.service
ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
# The quick board masks what it does not need; resolved among them.
systemctl unmask --quiet systemd-resolved.service
systemctl start systemd-resolved.service
ip link add rs0 type veth peer name rs0p
ip link set rs0p up`, "R="+src)
	t.Cleanup(func() { sh(t, "ip link del rs0 2>/dev/null || true") })
	sh(t, "systemctl restart boxagent.service")
	cli(t, "", "net", "uplink", "add", "--parent", "rs0", "--method", "static", "--address", "10.47.0.2/24",
		"--dns", "10.47.0.1", "--dns", "10.47.0.3", "--search", "tv.example")

	want := func(what string, ok func(dns, dom string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			dns := sh(t, "resolvectl dns rs0")
			dom := sh(t, "resolvectl domain rs0")
			if ok(dns, dom) {
				t.Logf("%s: %s%s", what, dns, dom)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: resolved has %q and %q\n%s", what, dns, dom, journal(t, "boxagent.service"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	told := func(dns, dom string) bool {
		return strings.Contains(dns, "10.47.0.1 10.47.0.3") && strings.Contains(dom, "tv.example")
	}
	start := time.Now()
	want("the uplink's servers in resolved", told)
	t.Logf("bench resolved: servers on the link %s after uplink add", time.Since(start).Round(time.Millisecond))

	var doc struct {
		Checks []struct{ Name, Result, Detail string } `json:"checks"`
	}
	out := sh(t, "boxagent doctor --json || true")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	found := false
	for _, c := range doc.Checks {
		if c.Name == "resolver" {
			found = true
			t.Logf("doctor: resolver %s: %s", c.Result, c.Detail)
			if c.Result != "OK" || !strings.Contains(c.Detail, "systemd-resolved") {
				t.Errorf("doctor's resolver check: %s %s", c.Result, c.Detail)
			}
		}
	}
	if !found {
		t.Errorf("doctor has no resolver check:\n%s", out)
	}

	sh(t, "systemctl restart systemd-resolved.service")
	start = time.Now()
	want("told again after resolved restarted", told)
	t.Logf("bench resolved: servers back %s after resolved restarted", time.Since(start).Round(time.Millisecond))

	cli(t, "", "net", "uplink", "del", "rs0")
	want("taken back after uplink del", func(dns, dom string) bool {
		return !strings.Contains(dns, "10.47.0.") && !strings.Contains(dom, "tv.example")
	})
	if j := journal(t, "boxagent.service"); strings.Contains(j, "cannot give systemd-resolved") {
		t.Errorf("the agent logged a refusal:\n%s", j)
	}
}
