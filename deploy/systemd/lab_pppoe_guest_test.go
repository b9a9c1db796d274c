//go:build lab

package systemd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/network"
)

// TestGuestPPPoEUnit: the hardened agent (user boxagent, no AF_PPPOX)
// runs a PPPoE uplink's pppd as a transient unit of PID 1, against
// pppoe-server in a namespace behind a veth and VLAN 45. The unit runs as
// root outside the agent's cgroup, the session comes up with its address
// and DNS, the password is on no command line, in no transient unit file,
// no property and no journal line; a server restart is redialled by the
// same pppd; a killed unit is replaced by the agent (told by PID 1's
// signals); an agent restart replaces the session (the agent stops its
// unit, and PID 1 does not restart it); `net uplink del` leaves no unit.
func TestGuestPPPoEUnit(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	srv, password := guest.StartPPPoEISP(t, "isp", "eth3")

	sh(t, "systemctl start boxagent.service")
	// config.toml as provisioning left it: the agent's own, which its
	// atomic rewrite keeps without a chown (the unit's seccomp filter
	// refuses even a chown to the same owner).
	if own := strings.TrimSpace(sh(t, "stat -c '%U:%G %a' /etc/boxagent/config.toml")); own != "boxagent:boxagent 600" {
		t.Errorf("/etc/boxagent/config.toml is %s after provisioning, want boxagent:boxagent 600", own)
	}
	agentCG := show(t, "boxagent.service", "ControlGroup")["ControlGroup"]
	const link = "eth3.45"
	unit := network.PPPoEUnitName(link)
	add := exec.Command("boxagent", "net", "uplink", "add", "--parent", "eth3", "--vlan", "45", "--method", "pppoe",
		"--user", guest.PPPoEUser, "--password-stdin", "--route-metric", "50")
	add.Stdin = strings.NewReader(password)
	start := time.Now()
	var cursor uint64 // the agent's last event seen
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("net uplink add: %v\n%s\n%s", err, out, journal(t, "boxagent.service"))
	}
	st := waitSession(t, link, &cursor, 90*time.Second, func(s network.PPPoEStatus) bool { return s.Up })
	t.Logf("bench pppoe-unit: session up %s after uplink add: %s %s peer %s, pppd %d", time.Since(start).Round(time.Millisecond), st.Link, st.Address, st.Peer, st.PID)

	t.Run("UnitOfPID1", func(t *testing.T) {
		p := show(t, unit, "ActiveState", "SubState", "MainPID", "ControlGroup", "Description", "BindsTo", "PartOf", "CollectMode", "Restart")
		t.Logf("%s: %v", unit, p)
		if p["ActiveState"] != "active" || p["MainPID"] != strconv.Itoa(st.PID) {
			t.Fatalf("%s: %v; the agent says pppd %d", unit, p, st.PID)
		}
		if p["BindsTo"] != "" || p["PartOf"] != "" || p["CollectMode"] != "inactive-or-failed" || p["Restart"] != "no" {
			t.Errorf("%s: BindsTo %q PartOf %q CollectMode %q Restart %q", unit, p["BindsTo"], p["PartOf"], p["CollectMode"], p["Restart"])
		}
		ps := procStatus(t, p["MainPID"])
		if !strings.HasPrefix(ps["Uid"], "0\t") || ps["PPid"] != "1" {
			t.Errorf("pppd %s: Uid %q PPid %q, want root and a child of PID 1", p["MainPID"], ps["Uid"], ps["PPid"])
		}
		cg, _ := os.ReadFile("/proc/" + p["MainPID"] + "/cgroup")
		if strings.Contains(string(cg), agentCG) || !strings.Contains(string(cg), unit) {
			t.Errorf("pppd's cgroup %q: want its own unit's, not the agent's %s", cg, agentCG)
		}
	})
	t.Run("SessionUp", func(t *testing.T) {
		addrs := sh(t, "ip -4 -o addr show dev "+st.Link)
		if !strings.Contains(addrs, "10.45.0.10") {
			t.Errorf("%s: %s", st.Link, addrs)
		}
		if r := sh(t, "ip -4 route show default"); !strings.Contains(r, "dev "+st.Link) || !strings.Contains(r, "metric 50") {
			t.Errorf("default route: %s", r)
		}
		var v network.View
		if err := json.Unmarshal([]byte(sh(t, "boxagent net show --json")), &v); err != nil {
			t.Fatal(err)
		}
		var u *network.UplinkStatus
		for i := range v.Uplinks {
			if v.Uplinks[i].Name == link {
				u = &v.Uplinks[i]
			}
		}
		if u == nil || !u.Up || u.PPPoE == nil || !u.PPPoE.Up || u.PPPoE.Address.String() != "10.45.0.10" {
			t.Errorf("net show: %+v", v.Uplinks)
		}
		// DNS came through the unit's output pipe (no /etc/ppp/resolv.conf
		// the agent could read).
		dns := waitSession(t, link, &cursor, 30*time.Second, func(s network.PPPoEStatus) bool { return len(s.DNS) > 0 })
		b, err := os.ReadFile("/run/boxagent/resolv.conf")
		if err != nil || !strings.Contains(string(b), "nameserver 10.45.0.1\n") {
			t.Errorf("DNS %v; /run/boxagent/resolv.conf %q, %v", dns.DNS, b, err)
		}
	})
	t.Run("NoSecret", func(t *testing.T) { noSecretOnBoard(t, password, unit) })

	t.Run("ServerRestart", func(t *testing.T) {
		srv.Kill(t)
		waitSession(t, link, &cursor, 60*time.Second, func(s network.PPPoEStatus) bool { return !s.Up })
		srv.Start(t)
		back := time.Now()
		st2 := waitSession(t, link, &cursor, 90*time.Second, func(s network.PPPoEStatus) bool { return s.Up })
		t.Logf("session back %s after the server restarted; pppd %d (was %d), connects %d", time.Since(back).Round(time.Millisecond), st2.PID, st.PID, st2.Connects)
		if st2.PID != st.PID {
			t.Errorf("pppd was replaced (%d, was %d): persist should have redialled", st2.PID, st.PID)
		}
	})
	t.Run("UnitKilled", func(t *testing.T) {
		old := show(t, unit, "MainPID", "InvocationID")
		sh(t, "systemctl kill --signal=SIGKILL "+unit)
		st3 := waitSession(t, link, &cursor, 2*time.Minute, func(s network.PPPoEStatus) bool { return s.Up && s.PID != st.PID && s.PID != 0 })
		now := show(t, unit, "ActiveState", "MainPID", "InvocationID")
		t.Logf("killed %v; the agent started %v (pppd %d, starts %d)", old, now, st3.PID, st3.Starts)
		if now["ActiveState"] != "active" || now["InvocationID"] == old["InvocationID"] || now["MainPID"] != strconv.Itoa(st3.PID) {
			t.Errorf("after the kill: %v, was %v", now, old)
		}
		st = st3
	})
	t.Run("AgentRestart", func(t *testing.T) {
		// The session is replaced, not adopted: its output pipe died with
		// the agent (see network's unitRunner).
		old := show(t, unit, "MainPID", "InvocationID")
		sh(t, "systemctl restart boxagent.service")
		cursor = 0 // a new agent, new events
		st4 := waitSession(t, link, &cursor, 2*time.Minute, func(s network.PPPoEStatus) bool { return s.Up })
		now := show(t, unit, "ActiveState", "MainPID", "InvocationID")
		t.Logf("agent restarted: unit %v -> %v, pppd %d", old, now, st4.PID)
		if now["ActiveState"] != "active" || now["InvocationID"] == old["InvocationID"] {
			t.Errorf("after the agent's restart: %v, was %v", now, old)
		}
		if err := exec.Command("kill", "-0", old["MainPID"]).Run(); err == nil {
			t.Errorf("the former pppd %s outlived the agent's restart", old["MainPID"])
		}
		noSecretOnBoard(t, password, unit)
	})
	t.Run("UplinkDel", func(t *testing.T) {
		pid := show(t, unit, "MainPID")["MainPID"]
		if out, err := exec.Command("boxagent", "net", "uplink", "del", link).CombinedOutput(); err != nil {
			t.Fatalf("net uplink del: %v\n%s", err, out)
		}
		if b, err := os.ReadFile("/etc/boxagent/config.toml"); err != nil || strings.Contains(string(b), password) {
			t.Errorf("config.toml still holds the uplink's password after net uplink del (%v)", err)
		}
		// Gone at once or told by PID 1's signals (the stop job may still
		// be winding down when a reload returns).
		defer func() {
			out, _ := exec.Command("journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-u", "boxagent.service", "--grep", "pppd|PPPoE|pppoe|network").CombinedOutput()
			t.Logf("the agent on its PPPoE sessions:\n%s", out)
		}()
		p := waitUnit(t, unit, time.Minute, func(p map[string]string) bool { return p["ActiveState"] == "inactive" })
		t.Logf("%s after the uplink left: %v", unit, p)
		if err := exec.Command("kill", "-0", pid).Run(); err == nil {
			t.Errorf("pppd %s still runs after net uplink del", pid)
		}
		if out := sh(t, "systemctl list-units --all --plain --no-legend 'boxagent-pppoe-*' | grep -v ' inactive ' || true"); strings.TrimSpace(out) != "" {
			t.Errorf("units left:\n%s", out)
		}
		t.Logf("PID 1 on the PPPoE units:\n%s", sh(t, "journalctl -b --no-pager -o short-monotonic --grep 'boxagent: PPPoE' || true"))
	})
}

// waitSession follows the agent's events after the one *since names (0:
// from the first the agent holds) until the uplink's PPPoE status
// satisfies ok, and moves *since to that event.
func waitSession(t *testing.T, link string, since *uint64, timeout time.Duration, ok func(network.PPPoEStatus) bool) network.PPPoEStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last network.PPPoEStatus
	var lines []string
	found := false
	err := client.New(paths.Default.Socket(), "cli").EventsSince(ctx, *since, func(ev localapi.Event) error {
		var e network.UplinkEvent
		if ev.Type != "net" || json.Unmarshal(ev.Data, &e) != nil || e.Uplink != link || e.Kind != "pppoe" || e.PPPoE == nil {
			return nil
		}
		last = *e.PPPoE
		lines = append(lines, e.Detail)
		if ok(last) {
			found, *since = true, ev.ID
			return client.ErrStop
		}
		return nil
	})
	if !found {
		t.Fatalf("no PPPoE status as wanted in %s (%v); last %+v after:\n%s\n%s", timeout, err, last, strings.Join(lines, "\n"), journal(t, "boxagent.service"))
	}
	return last
}

// noSecretOnBoard fails t when the password is on a command line or in an
// environment, under /run/systemd/transient, in the unit's properties or
// anywhere in this boot's journal.
func noSecretOnBoard(t *testing.T, password, unit string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join(p, f)); err == nil && strings.Contains(string(b), password) {
				t.Errorf("the password is in %s/%s: %q", p, f, b)
			}
		}
	}
	filepath.WalkDir("/run/systemd", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), password) {
				t.Errorf("the password is in %s", p)
			}
		}
		return nil
	})
	if out := sh(t, "systemctl show "+unit); strings.Contains(out, password) {
		t.Errorf("the password is in systemctl show %s", unit)
	}
	out, _ := exec.Command("journalctl", "-b", "--no-pager", "-o", "verbose").CombinedOutput()
	if strings.Contains(string(out), password) {
		t.Errorf("the password is in the journal")
	}
	if b, _ := os.ReadFile("/run/systemd/transient/" + unit); len(b) > 0 {
		t.Logf("/run/systemd/transient/%s:\n%s", unit, b)
	}
}
