package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
)

// Bad addresses are refused before anything is called: no daemon needed.
func TestBtUsage(t *testing.T) {
	requireProcesses(t)
	for _, args := range [][]string{
		{"bt", "pair", "00:11:22:33:44"},
		{"bt", "connect", "zz:11:22:33:44:55"},
		{"bt", "forget"},
		{"bt", "pairable", "maybe"},
		{"bt", "autoconnect", "00:1B:66:AA:BB:CC", "maybe"},
		{"bt", "power"},
		{"bt"},
		{"bt", "fly"},
	} {
		_, stderr, code := runCLI(t, append(args, "--socket", "/nonexistent/api.sock")...)
		if code != cli.ExitUsage || !strings.Contains(stderr, "usage: boxagent bt") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with usage", args, code, stderr)
		}
	}
}

// startBluezMock runs python-dbusmock's bluez5 template (the stand-in for
// bluetoothd) on a private bus with one adapter and one headset.
func startBluezMock(t *testing.T) string {
	t.Helper()
	addr, _ := startBluezMockProc(t)
	return addr
}

// startBluezMockProc is startBluezMock that also returns the mock's
// process, for a test that ends it.
func startBluezMockProc(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	py := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import dbusmock").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("python3-dbusmock is not installed (make test installs it)")
	}
	addr := startBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan *dbus.Signal, 8)
	conn.Signal(ch)
	conn.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, "org.bluez"))
	cmd := exec.Command(py, "-m", "dbusmock", "--template", "bluez5")
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	timeout := time.After(15 * time.Second)
	for owned := false; !owned; {
		select {
		case s := <-ch:
			owned = s.Name == "org.freedesktop.DBus.NameOwnerChanged" && len(s.Body) == 3 && s.Body[0] == "org.bluez" && s.Body[2] != ""
		case <-timeout:
			t.Fatal("dbusmock did not take org.bluez")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mock := conn.Object("org.bluez", "/")
	if err := mock.CallWithContext(ctx, "org.bluez.Mock.AddAdapter", 0, "hci0", "box").Err; err != nil {
		t.Fatal(err)
	}
	var dev dbus.ObjectPath
	if err := mock.CallWithContext(ctx, "org.bluez.Mock.AddDevice", 0, "hci0", "00:1B:66:AA:BB:CC", "Office Headset").Store(&dev); err != nil {
		t.Fatal(err)
	}
	conn.Object("org.bluez", dev).CallWithContext(ctx, "org.freedesktop.DBus.Mock.UpdateProperties", 0, "org.bluez.Device1",
		map[string]dbus.Variant{"UUIDs": dbus.MakeVariant([]string{"0000110b-0000-1000-8000-00805f9b34fb"})})
	return addr, cmd
}

func TestBtAgainstBluezMock(t *testing.T) {
	requireProcesses(t)
	addr := startBluezMock(t)
	// The template's pairing makes any device a phone (its UUIDs and
	// class): this one stays the headset it is, so bt pair saves it.
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Object("org.bluez", "/org/bluez/hci0/dev_00_1B_66_AA_BB_CC").Call("org.freedesktop.DBus.Mock.AddMethod", 0,
		"org.bluez.Device1", "Pair", "", "", `
self.PairDevice('hci0', '00:1B:66:AA:BB:CC', 0x240404)
self.UpdateProperties('org.bluez.Device1', {'UUIDs': dbus.Array(['0000110b-0000-1000-8000-00805f9b34fb'], signature='s'), 'Icon': dbus.String('audio-headset')})
`).Err; err != nil {
		t.Fatal(err)
	}
	p := startAgentEnv(t, t.TempDir(), []string{"DBUS_SYSTEM_BUS_ADDRESS=" + addr})

	out, _, code := p.run("status")
	if code != 0 || !strings.Contains(out, "bluetooth:  ok: hci0 00:01:02:03:04:05, 0 connected") {
		t.Errorf("status:\n%s", out)
	}
	out, _, code = p.run("bt", "adapters")
	if code != 0 || !strings.Contains(out, "hci0  00:01:02:03:04:05  box") {
		t.Errorf("bt adapters: %d\n%s", code, out)
	}
	out, _, code = p.run("bt", "devices")
	if code != 0 || !strings.Contains(out, "00:1B:66:AA:BB:CC  Office Headset  a2dp") {
		t.Errorf("bt devices: %d\n%s", code, out)
	}
	out, stderr, code := p.run("bt", "pair", "00:1b:66:aa:bb:cc")
	if code != 0 || !strings.Contains(out, "paired, trusted and connected 00:1B:66:AA:BB:CC (Office Headset)") || !strings.Contains(stderr, "pairing with Office Headset") {
		t.Errorf("bt pair: %d\n%s\n%s", code, out, stderr)
	}
	// Music by default: the new headset is saved with its mode.
	if !strings.Contains(stderr, "saved as a headset in "+filepath.Join(p.root, "etc/boxagent/config.toml")+", mode music") {
		t.Errorf("bt pair does not say the headset was saved:\n%s", stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(p.root, "etc/boxagent/config.toml"))
	if !strings.Contains(string(cfg), "[[bluetooth.headset]]\naddress = \"00:1B:66:AA:BB:CC\"\nmode = \"music\"\n") {
		t.Errorf("the config after bt pair:\n%s", cfg)
	}
	out, _, code = p.run("bt", "devices", "--json")
	var ds []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 1 || ds[0]["connected"] != true || ds[0]["paired"] != true {
		t.Errorf("bt devices --json: %d\n%s", code, out)
	}
	// A phone paired is no headset: not saved.
	if err := conn.Object("org.bluez", "/").Call("org.bluez.Mock.AddDevice", 0, "hci0", "00:1B:66:00:00:07", "Phone").Err; err != nil {
		t.Fatal(err)
	}
	if out, stderr, code = p.run("bt", "pair", "00:1B:66:00:00:07"); code != 0 || strings.Contains(stderr, "saved as a headset") {
		t.Errorf("bt pair of a phone: %d\n%s\n%s", code, out, stderr)
	}
	if cfg, _ := os.ReadFile(filepath.Join(p.root, "etc/boxagent/config.toml")); strings.Contains(string(cfg), "00:1B:66:00:00:07") {
		t.Errorf("a phone saved as a headset:\n%s", cfg)
	}
	if out, _, code = p.run("bt", "disconnect", "00:1B:66:AA:BB:CC"); code != 0 || !strings.HasPrefix(out, "disconnected 00:1B:66:AA:BB:CC") {
		t.Errorf("bt disconnect: %d %s", code, out)
	}
	if out, _, code = p.run("bt", "pairable", "on", "--timeout", "1m"); code != 0 || !strings.Contains(out, "pairing window open on hci0 until") {
		t.Errorf("bt pairable on: %d %s", code, out)
	}
	if out, _, code = p.run("bt", "pairable", "off"); code != 0 || !strings.Contains(out, "pairing window closed on hci0") {
		t.Errorf("bt pairable off: %d %s", code, out)
	}
	if out, _, code = p.run("bt", "forget", "00:1B:66:AA:BB:CC"); code != 0 || out != "forgot 00:1B:66:AA:BB:CC\n" {
		t.Errorf("bt forget: %d %s", code, out)
	}
	_, stderr, code = p.run("bt", "connect", "00:1B:66:AA:BB:CC")
	if code != cli.ExitFailed || !strings.Contains(stderr, "(bluetooth.not_found)") || !strings.Contains(stderr, "hint: ") {
		t.Errorf("bt connect of a forgotten device: %d %s", code, stderr)
	}
	out, stderr, code = p.run("bt", "scan", "--timeout", "1s")
	if code != 0 || !strings.Contains(stderr, "no devices") {
		t.Errorf("bt scan: %d\n%s\n%s", code, out, stderr)
	}
	// Every mutation is in the journal.
	out, _, _ = p.run("history", "--kind", "bt.pair")
	if !strings.Contains(out, "pair, trust and connect 00:1B:66:AA:BB:CC") || !strings.Contains(out, "done") {
		t.Errorf("history of bt.pair:\n%s", out)
	}
}
