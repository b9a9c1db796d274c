package cli_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet/fleettest"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// TestFleetCLI runs the real agent with [fleet] against Debian's mosquitto
// (TLS, client certificates, per-box ACL) and drives it with the same CLI
// commands through `boxagent fleet`: list, a read, a change, a group
// command, a refused route.
func TestFleetCLI(t *testing.T) {
	requireProcesses(t)
	pki := fleettest.NewPKI(t)
	url := fleettest.StartMosquitto(t, pki)
	opDir := t.TempDir()
	signKey := filepath.Join(opDir, "op.key")
	pub, stderr, code := runCLI(t, "fleet", "keygen", "--sign-key", signKey)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	if _, _, code := runCLI(t, "fleet", "keygen", "--sign-key", signKey); code == 0 {
		t.Errorf("keygen overwrote a key")
	}
	cert, key := pki.Issue(t, "box-1", false, time.Now().Add(24*time.Hour))
	root := t.TempDir()
	writeConfig(t, root, fmt.Sprintf(`board = "auto"
[http]
listen = "127.0.0.1:0"
[fleet]
brokers = [%q]
ca = %q
cert = %q
key = %q
groups = ["lab"]
routes = ["GET /api/v1/status", "GET /api/v1/operations", "GET /api/v1/operations/{id}", "POST /api/v1/config/reload"]
operator_keys = [%q]
`, url, pki.CAFile, cert, key, strings.TrimSpace(pub)))
	p := startAgent(t, root)
	opCert, opKey := pki.Issue(t, "operator", false, time.Now().Add(24*time.Hour))
	fleetCLI := func(args ...string) (string, string, int) {
		return runCLI(t, append([]string{"fleet", "--broker", url, "--ca", pki.CAFile, "--cert", opCert, "--key", opKey, "--sign-key", signKey, "--resend", "2s"}, args...)...)
	}

	fleettest.WaitFor(t, 20*time.Second, "box-1 online in fleet list", func() bool {
		out, _, _ := fleetCLI("list")
		return strings.Contains(out, "box-1") && strings.Contains(out, "online")
	})
	t.Run("a read command, same JSON as on the box", func(t *testing.T) {
		remote, stderr, code := fleetCLI("--device", "box-1", "status", "--json")
		local, _, _ := p.run("status", "--json")
		var r, l apitype.Status
		if code != 0 || json.Unmarshal([]byte(remote), &r) != nil || json.Unmarshal([]byte(local), &l) != nil {
			t.Fatalf("status: exit %d %s\n%s", code, stderr, remote)
		}
		if r.Version != l.Version || r.Config.Revision != l.Config.Revision || len(r.Subsystems) != len(l.Subsystems) {
			t.Errorf("remote status %+v\nlocal %+v", r, l)
		}
	})
	t.Run("a change, journalled with origin fleet", func(t *testing.T) {
		out, stderr, code := fleetCLI("--device", "box-1", "config", "reload")
		if code != 0 {
			t.Fatalf("config reload: exit %d: %s %s", code, out, stderr)
		}
		hist, _, _ := p.run("history", "--json", "--origin", "fleet")
		var ops []journal.Operation
		json.Unmarshal([]byte(hist), &ops)
		if len(ops) != 1 || ops[0].Kind != "config.reload" || ops[0].Ref == "" {
			t.Errorf("journal: %s", hist)
		}
		remote, _, code := fleetCLI("--device", "box-1", "history", "--origin", "fleet")
		if code != 0 || !strings.Contains(remote, "config.reload") {
			t.Errorf("history through the fleet: exit %d\n%s", code, remote)
		}
	})
	t.Run("a route the box does not allow", func(t *testing.T) {
		_, stderr, code := fleetCLI("--device", "box-1", "history", "1", "--json")
		if code != 0 {
			t.Fatalf("an allowed read failed: %s", stderr)
		}
		_, stderr, code = fleetCLI("--device", "box-1", "doctor")
		if code != 1 || !strings.Contains(stderr, "fleet.route_not_allowed") {
			t.Errorf("doctor (not allowed): exit %d: %s", code, stderr)
		}
	})
	t.Run("watch", func(t *testing.T) {
		cmd := boxagentCmd("fleet", "--broker", url, "--ca", pki.CAFile, "--cert", opCert, "--key", opKey, "watch", "--device", "box-1")
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		// The retained state first, then a record as it ends.
		fleettest.WaitFor(t, 10*time.Second, "the retained state", func() bool { return strings.Contains(out.String(), "state  online") })
		if _, _, code := p.run("config", "reload"); code != 0 {
			t.Fatal("config reload failed")
		}
		fleettest.WaitFor(t, 10*time.Second, "the record", func() bool { return strings.Contains(out.String(), "config.reload done (cli)") })
	})
	t.Run("a group command", func(t *testing.T) {
		out, stderr, code := fleetCLI("send", "--group", "lab", "--window", "500ms", "--", "config", "reload")
		if code != 0 || !strings.Contains(out, "box-1") || !strings.Contains(out, " 200 ") {
			t.Fatalf("send --group: exit %d\n%s\n%s", code, out, stderr)
		}
		hist, _, _ := p.run("history", "--json", "--origin", "fleet", "--kind", "config.reload")
		var ops []journal.Operation
		json.Unmarshal([]byte(hist), &ops)
		if len(ops) != 2 {
			t.Errorf("%d fleet reloads journalled, want 2", len(ops))
		}
	})
}
