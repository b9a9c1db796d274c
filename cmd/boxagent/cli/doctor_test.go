package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/testbus"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// startBus runs a private dbus-daemon and returns its address. The
// daemon is the real one; only its config is the test's.
func startBus(t *testing.T) string {
	t.Helper()
	return testbus.Start(t)
}

func TestDoctorAgainstARealBus(t *testing.T) {
	requireProcesses(t)
	addr := startBus(t)
	// Stand in for bluetoothd's presence on the bus: doctor asks only
	// whether the name has an owner.
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if reply, err := conn.RequestName("org.bluez", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own org.bluez: %v %v", reply, err)
	}

	p := startAgentEnv(t, t.TempDir(), []string{"DBUS_SYSTEM_BUS_ADDRESS=" + addr})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := p.client().Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]localapi.Check{}
	for _, c := range d.Checks {
		got[c.Name] = c
	}
	want := map[string]string{
		"system bus":            localapi.CheckOK,
		"org.bluez":             localapi.CheckOK,
		"fi.w1.wpa_supplicant1": localapi.CheckWarn,
		"limits":                localapi.CheckOK,
		"package hashing":       localapi.CheckOK, // Go's SHA-256 here: the host kernel has no AF_ALG
	}
	for name, result := range want {
		if got[name].Result != result {
			t.Errorf("%s: %+v, want %s", name, got[name], result)
		}
	}
	if c := got["fi.w1.wpa_supplicant1"]; c.Fix == "" {
		t.Errorf("a warning without a fix: %+v", c)
	}
	out, _, code := p.run("doctor")
	if code != 0 || !strings.Contains(out, "WARN  fi.w1.wpa_supplicant1") {
		t.Errorf("doctor: exit %d\n%s", code, out)
	}
}

func TestDoctorWithoutBus(t *testing.T) {
	p := startAgentEnv(t, t.TempDir(), []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/bus"})
	out, _, code := p.run("doctor")
	if code != 1 || !strings.Contains(out, "FAIL  system bus") || !strings.Contains(out, "fix: systemctl start dbus") {
		t.Errorf("doctor without a bus: exit %d\n%s", code, out)
	}
}
