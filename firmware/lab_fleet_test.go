//go:build lab

package firmware

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/fleet/fleettest"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestGuestFleetStage stages a package on a hot-plugged stick by a fleet
// command: the real agent with [fleet] against Debian's mosquitto in the
// board (TLS, client certificates, per-box ACL), and an operator's
// `boxagent fleet --device box-1 fw stage …`, signed by the operator's
// key and carried by the broker, run through the box's route table as
// origin fleet. The host (TestLab) checks the image afterwards.
func TestGuestFleetStage(t *testing.T) {
	vm.RequireGuest(t)
	bin := os.Getenv("FW_BOXAGENT")
	if bin == "" {
		t.Fatal("FW_BOXAGENT is not set: TestLab sets it")
	}
	pki := fleettest.NewPKI(t)
	url := fleettest.StartMosquitto(t, pki)
	signKey := filepath.Join(t.TempDir(), "op.key")
	boxCert, boxKey := pki.Issue(t, "box-1", false, time.Now().Add(24*time.Hour))
	opCert, opKey := pki.Issue(t, "operator", false, time.Now().Add(24*time.Hour))
	cert := filepath.Join(os.Getenv(envLabDir), labCert)

	// The operator's key first: its public half goes in the box's config.
	keygen := &guest.Agent{Bin: bin, Socket: "/nonexistent"}
	pub, errOut, code := keygen.Run(t, "fleet", "keygen", "--sign-key", signKey)
	if code != 0 {
		t.Fatalf("fleet keygen: exit %d: %s", code, errOut)
	}
	a := guest.StartAgent(t, bin, t.TempDir(), fmt.Sprintf(`board = "auto"
[firmware]
keys = [%q]
[fleet]
brokers = [%q]
ca = %q
cert = %q
key = %q
routes = ["GET /api/v1/status", "GET /api/v1/fw", "POST /api/v1/fw/stage", "POST /api/v1/fw/eject", "GET /api/v1/operations", "GET /api/v1/operations/{id}"]
operator_keys = [%q]
`, cert, url, pki.CAFile, boxCert, boxKey, strings.TrimSpace(pub)))
	fleet := func(args ...string) (string, string, int) {
		return a.Run(t, append([]string{"fleet", "--broker", url, "--ca", pki.CAFile, "--cert", opCert, "--key", opKey,
			"--sign-key", signKey, "--resend", "5s"}, args...)...)
	}
	// The package is in the box's store (added at the box: a path there).
	if out, errOut, code := a.Run(t, "fw", "add", filepath.Join(os.Getenv(envLabDir), labSmall)); code != 0 {
		t.Fatalf("fw add: exit %d\n%s%s", code, out, errOut)
	}
	sha := os.Getenv("FW_SHA_SMALL")
	plug := guest.PlugStick(t, "fleet")
	dev := filepath.Base(plug.Partitions[0])
	fleettest.WaitFor(t, 60*time.Second, "box-1 online, and its stick usable", func() bool {
		out, _, _ := fleet("list")
		sticks, _, _ := a.Run(t, "fw", "sticks")
		return strings.Contains(out, "box-1") && strings.Contains(out, "online") && strings.Contains(sticks, dev)
	})

	start := time.Now()
	out, errOut, code := fleet("--device", "box-1", "fw", "stage", sha, "--device", dev)
	t.Logf("fleet fw stage: %s\n%s%s", time.Since(start).Round(time.Millisecond), out, errOut)
	if code != 0 || !strings.Contains(out, "staged "+sha) {
		t.Fatalf("fleet fw stage: exit %d", code)
	}
	// The box journalled it as the fleet's, with the settings in force.
	hist, _, _ := a.Run(t, "history", "--json", "--origin", "fleet", "--kind", "fw.stage")
	var ops []journal.Operation
	if err := json.Unmarshal([]byte(hist), &ops); err != nil || len(ops) != 1 || ops[0].State != journal.StateDone || ops[0].Ref == "" ||
		!strings.HasPrefix(ops[0].Snapshot.Revision, "sha256:") {
		t.Errorf("the box's journal of the fleet's fw.stage (%v):\n%s", err, hist)
	}
	// A route the box does not allow is refused, and nothing runs.
	_, errOut, code = fleet("--device", "box-1", "fw", "rollback", "--device", dev)
	if code == 0 || !strings.Contains(errOut, "fleet.route_not_allowed") {
		t.Errorf("fleet fw rollback (not allowed): exit %d: %s", code, errOut)
	}
	if out, errOut, code := fleet("--device", "box-1", "fw", "eject", "--device", dev); code != 0 {
		t.Errorf("fleet fw eject: exit %d\n%s%s", code, out, errOut)
	}
	plug.Unplug(t)
}
