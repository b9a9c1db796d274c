package guest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BluetoothPulse is a PulseAudio with the Bluetooth modules: started before
// pairing, its A2DP/HSP endpoints put the audio UUIDs into the "headset"
// controller's SDP record, and it makes a bluez_card.* for a connected
// headset. It is separate from ALSAPulse: one test, one PulseAudio.
type BluetoothPulse struct {
	DBus   string // unix:path=/run/bt-pulse/run/pulse/dbus-socket
	Native string // unix:/run/bt-pulse/native, for pactl (PULSE_SERVER)
	Dir    string
	Proc   *Proc
}

// StartBluetoothPulse starts PulseAudio with module-bluetooth-discover
// (headset=native, HSP and HFP headset roles on) and returns once it says
// it is ready. bluetoothd must be running.
func StartBluetoothPulse(t testing.TB) *BluetoothPulse {
	t.Helper()
	dir := "/run/bt-pulse"
	os.RemoveAll(dir) // a former test's
	for _, d := range []string{"home", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	native := filepath.Join(dir, "native")
	lines := []string{
		"load-module module-native-protocol-unix socket=" + native + " auth-anonymous=1",
		"load-module module-null-sink",
		"load-module module-dbus-protocol",
		"load-module module-bluetooth-policy",
		"load-module module-bluetooth-discover headset=native enable_native_hsp_hs=true enable_native_hfp_hf=true",
		"load-module module-card-restore",
	}
	script := filepath.Join(dir, "bt.pa")
	if err := os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
		"--use-pid-file=no", "--log-target=stderr", "--log-level=info", "-F", script)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:", "DISPLAY=")
	logf, err := os.Create(filepath.Join(LogDir(t), "pulseaudio-bt.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, w
	ready := make(chan struct{})
	// Readiness from PulseAudio's own output, copied into the log.
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		once := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !once && strings.Contains(sc.Text(), "Daemon startup complete") {
				once = true
				close(ready)
			}
		}
		io.Copy(logf, r)
	}()
	p := &BluetoothPulse{DBus: "unix:path=" + filepath.Join(dir, "run", "pulse", "dbus-socket"), Native: "unix:" + native, Dir: dir}
	start := time.Now()
	p.Proc = Start(t, "pulseaudio-bt", cmd)
	w.Close()
	if err := p.Proc.Ready(30*time.Second, func(ctx context.Context) error {
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return errors.New("no \"Daemon startup complete\" from pulseaudio")
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pulseaudio with bluetooth ready in %s", time.Since(start).Round(time.Millisecond))
	return p
}

// Pactl runs pactl against this PulseAudio.
func (p *BluetoothPulse) Pactl(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("pactl", args...)
	cmd.Env = append(os.Environ(), "PULSE_SERVER="+p.Native)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pactl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
