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

// envResolved and envResolvconf are the unpacked systemd-resolved package
// of the host's systemd and resolvconf (lab-deps.sh's step 5), copied into
// the board.
const (
	envResolved   = "SD_RESOLVED"
	envResolvconf = "SD_RESOLVCONF"
)

// unpackInto copies the unpacked package that env names into the board's
// root (a RAM overlay: the host is not touched), as dpkg would without its
// maintainer scripts, and checks it has file.
func unpackInto(t *testing.T, env, file string) {
	t.Helper()
	src := os.Getenv(env)
	if _, err := os.Stat(filepath.Join(src, file)); err != nil {
		t.Fatalf("no unpacked package with %s in %s=%q (make lab-deps): %v", file, env, src, err)
	}
	// /lib and /sbin are links into /usr (merged /usr): keep them.
	sh(t, `tar -C "$R" --exclude=./.stamp -cf - . | tar -C / -xf - --keep-directory-symlink`, "R="+src)
}

// TestGuestResolvconfUnit: where resolvconf keeps /etc/resolv.conf, the
// package's boxagent-resolvconf.path hands it the agent's file whenever
// the agent replaces it: a static uplink's server and search domain reach
// /etc/resolv.conf, and leave it with `net uplink del`; the doctor names
// resolvconf.
func TestGuestResolvconfUnit(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	unpackInto(t, envResolvconf, "sbin/resolvconf")
	sh(t, `set -e
systemd-tmpfiles --create /usr/lib/tmpfiles.d/resolvconf.conf
systemctl daemon-reload
systemctl unmask --quiet resolvconf.service
systemctl start resolvconf.service
ln -sf ../run/resolvconf/resolv.conf /etc/resolv.conf
systemctl enable --now boxagent-resolvconf.path
ip link add rs1 type veth peer name rs1p
ip link set rs1p up`)
	t.Cleanup(func() {
		sh(t, `systemctl disable --now boxagent-resolvconf.path; /sbin/resolvconf -d boxagent || true
ip link del rs1 2>/dev/null || true`)
	})
	sh(t, "systemctl restart boxagent.service")
	start := time.Now()
	cli(t, "", "net", "uplink", "add", "--parent", "rs1", "--method", "static", "--address", "10.48.0.2/24",
		"--dns", "10.48.0.1", "--search", "box.example")
	etc := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, _ := os.ReadFile("/etc/resolv.conf")
			if ok(string(b)) {
				t.Logf("%s:\n%s", what, b)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /etc/resolv.conf is\n%s\n%s\n%s", what, b, journal(t, "boxagent-resolvconf.service"), journal(t, "boxagent.service"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	etc("the uplink's server in resolvconf's file", func(s string) bool {
		return strings.Contains(s, "nameserver 10.48.0.1") && strings.Contains(s, "box.example")
	})
	t.Logf("bench resolvconf: server in /etc/resolv.conf %s after uplink add", time.Since(start).Round(time.Millisecond))
	if c := doctorCheck(t, "resolver"); c.Result != "OK" || !strings.Contains(c.Detail, "resolvconf") {
		t.Errorf("doctor's resolver check: %s %s", c.Result, c.Detail)
	}
	cli(t, "", "net", "uplink", "del", "rs1")
	etc("gone after uplink del", func(s string) bool { return !strings.Contains(s, "10.48.0.1") })
}

// doctorCheck is the doctor's check of that name.
func doctorCheck(t *testing.T, name string) (c struct{ Name, Result, Detail string }) {
	t.Helper()
	var doc struct {
		Checks []struct{ Name, Result, Detail string } `json:"checks"`
	}
	out := sh(t, "boxagent doctor --json || true")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	for _, c := range doc.Checks {
		if c.Name == name {
			t.Logf("doctor: %s %s: %s", c.Name, c.Result, c.Detail)
			return c
		}
	}
	t.Fatalf("doctor has no %s check:\n%s", name, out)
	return c
}

// TestGuestResolvedUnit: where systemd-resolved runs, the hardened agent
// (user boxagent, allowed by the package's polkit rule) gives it each
// uplink's DNS servers and search domains per link: a static uplink's are
// on its link in resolved; after resolved restarts (it forgets every
// link) the agent tells it again, followed by NameOwnerChanged; `net
// uplink del` takes them back; the doctor names resolved.
func TestGuestResolvedUnit(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	unpackInto(t, envResolved, "lib/systemd/systemd-resolved")
	// As the package's postinst would.
	sh(t, `set -e
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
ip link set rs0p up`)
	t.Cleanup(func() { sh(t, "systemctl stop systemd-resolved.service; ip link del rs0 2>/dev/null || true") })
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

	if c := doctorCheck(t, "resolver"); c.Result != "OK" || !strings.Contains(c.Detail, "systemd-resolved") {
		t.Errorf("doctor's resolver check: %s %s", c.Result, c.Detail)
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
