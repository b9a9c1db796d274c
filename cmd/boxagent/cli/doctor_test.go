package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/internal/testbus"

	"github.com/godbus/dbus/v5"
)

// startBus runs a private dbus-daemon and returns its address. The
// daemon is the real one; only its config is the test's.
func startBus(t *testing.T) string {
	t.Helper()
	return testbus.Start(t)
}

// TestDoctorAgainstARealBus: the doctor on a private dbus-daemon where
// python-dbusmock's BlueZ (the bluez5 template) owns org.bluez. Its
// org.bluez check is OK, naming the adapter, only while BlueZ answers
// with one; it warns when BlueZ has no adapter and when nothing owns the
// name, and fails when the name's owner does not answer as BlueZ.
func TestDoctorAgainstARealBus(t *testing.T) {
	requireProcesses(t)
	addr, mock := startBluezMockProc(t)
	p := startAgentEnv(t, t.TempDir(), []string{"DBUS_SYSTEM_BUS_ADDRESS=" + addr})
	doctor := func() map[string]apitype.Check {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := p.client().Doctor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]apitype.Check{}
		for _, c := range d.Checks {
			got[c.Name] = c
		}
		return got
	}
	got := doctor()
	want := map[string]string{
		"system bus":            apitype.CheckOK,
		"org.bluez":             apitype.CheckOK,
		"fi.w1.wpa_supplicant1": apitype.CheckWarn,
		"limits":                apitype.CheckOK,
		"package hashing":       apitype.CheckOK, // Go's SHA-256 here: the host kernel has no AF_ALG
	}
	for name, result := range want {
		if got[name].Result != result {
			t.Errorf("%s: %+v, want %s", name, got[name], result)
		}
	}
	if c := got["org.bluez"]; c.Detail != "BlueZ (bluetoothd) answers, adapters: hci0" {
		t.Errorf("org.bluez with the mock's hci0: %+v", c)
	}
	if c := got["fi.w1.wpa_supplicant1"]; c.Fix == "" {
		t.Errorf("a warning without a fix: %+v", c)
	}
	out, _, code := p.run("doctor")
	if code != 0 || !strings.Contains(out, "OK    org.bluez") || !strings.Contains(out, "WARN  fi.w1.wpa_supplicant1") {
		t.Errorf("doctor: exit %d\n%s", code, out)
	}

	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bluez := func(what string, want string, detail string) {
		t.Helper()
		c := doctor()["org.bluez"]
		if c.Result != want || !strings.Contains(c.Detail, detail) || c.Fix == "" {
			t.Errorf("org.bluez %s: %+v, want %s with %q and a fix", what, c, want, detail)
		}
	}

	// BlueZ without a controller.
	if err := conn.Object("org.bluez", "/").CallWithContext(ctx, "org.bluez.Mock.RemoveAdapterWithDevices", 0, "hci0").Err; err != nil {
		t.Fatal(err)
	}
	bluez("without an adapter", apitype.CheckWarn, "answers but has no adapter")

	// No BlueZ.
	mock.Process.Kill()
	mock.Wait()
	for has := true; has; {
		if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.bluez").Store(&has); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	bluez("with BlueZ gone", apitype.CheckWarn, "is not on the bus")

	// Something else holds the name: it answers, but not as BlueZ.
	if reply, err := conn.RequestName("org.bluez", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own org.bluez: %v %v", reply, err)
	}
	bluez("held by another program", apitype.CheckFail, "does not answer as BlueZ")
	if out, _, code := p.run("doctor"); code != 1 || !strings.Contains(out, "FAIL  org.bluez") {
		t.Errorf("doctor with org.bluez held by another program: exit %d\n%s", code, out)
	}
}

func TestDoctorWithoutBus(t *testing.T) {
	p := startAgentEnv(t, t.TempDir(), []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/bus"})
	out, _, code := p.run("doctor")
	if code != 1 || !strings.Contains(out, "FAIL  system bus") || !strings.Contains(out, "fix: systemctl start dbus") {
		t.Errorf("doctor without a bus: exit %d\n%s", code, out)
	}
}
