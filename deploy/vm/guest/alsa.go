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

// ALSACard is the card name PulseAudio gives the snd-dummy card.
const ALSACard = "alsa_card.dummy"

// ALSAPulse is a PulseAudio that drives the snd-dummy ALSA card through
// module-alsa-card (the card's profiles: output:stereo-fallback,
// input:stereo-fallback, both, off), with module-dbus-protocol for
// boxagent and the native protocol for streams. It is separate from the
// Bluetooth PulseAudio (pulseaudio.go): one test, one PulseAudio.
type ALSAPulse struct {
	DBus   string // unix:path=/run/alsa-pulse/run/pulse/dbus-socket
	Native string // unix:/run/alsa-pulse/native
	Dir    string
	Proc   *Proc
}

// StartALSAPulse loads snd-dummy and starts PulseAudio on it; it returns
// once PulseAudio says it is ready. extraModules are more "load-module"
// lines (e.g. module-null-sink).
func StartALSAPulse(t testing.TB, extraModules ...string) *ALSAPulse {
	t.Helper()
	Modprobe(t, "snd-dummy")
	if _, err := os.Stat("/dev/snd/controlC0"); err != nil {
		t.Fatalf("snd-dummy loaded but no ALSA control device: %v", err)
	}
	dir := "/run/alsa-pulse"
	os.RemoveAll(dir) // a former test's
	for _, d := range []string{"home", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	native := filepath.Join(dir, "native")
	lines := append([]string{
		"load-module module-alsa-card device_id=0 name=dummy card_name=" + ALSACard,
		"load-module module-native-protocol-unix socket=" + native + " auth-anonymous=1",
		"load-module module-dbus-protocol",
	}, extraModules...)
	script := filepath.Join(dir, "alsa.pa")
	if err := os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
		"--use-pid-file=no", "--log-target=stderr", "--log-level=info", "-F", script)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:", "DISPLAY=")
	logf, err := os.Create(filepath.Join(LogDir(t), "pulseaudio-alsa.log"))
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
	// PulseAudio says when it is ready: readiness from its own output,
	// copied into the log as it comes.
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
	p := &ALSAPulse{DBus: "unix:path=" + filepath.Join(dir, "run", "pulse", "dbus-socket"), Native: "unix:" + native, Dir: dir}
	start := time.Now()
	p.Proc = Start(t, "pulseaudio-alsa", cmd)
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
	t.Logf("pulseaudio on snd-dummy ready in %s", time.Since(start).Round(time.Millisecond))
	return p
}
