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

// SystemPulse is PulseAudio in system mode (pulseaudio --system, as the
// box runs it from deploy/pulseaudio): sockets in /run/pulse, the daemon
// drops to the "pulse" user, clients authenticate with its cookie or the
// pulse-access group.
type SystemPulse struct {
	DBus   string // unix:path=/run/pulse/dbus-socket
	Native string // /run/pulse/native
	Cookie string // /run/pulse/.config/pulse/cookie
	Proc   *Proc
}

// StartSystemPulse starts PulseAudio in system mode with the script at
// path (e.g. deploy/pulseaudio/system.pa) and returns once it is ready.
func StartSystemPulse(t testing.TB, script string) *SystemPulse {
	t.Helper()
	os.RemoveAll("/run/pulse") // a former test's
	t.Cleanup(func() { os.RemoveAll("/run/pulse") })
	cmd := exec.Command("pulseaudio", "--system", "--daemonize=no", "--disallow-exit", "--exit-idle-time=-1",
		"--log-target=stderr", "--log-level=info", "-n", "-F", script)
	cmd.Env = append(os.Environ(), "DISPLAY=")
	logf, err := os.Create(filepath.Join(LogDir(t), "pulseaudio-system.log"))
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
	start := time.Now()
	p := &SystemPulse{DBus: "unix:path=/run/pulse/dbus-socket", Native: "/run/pulse/native",
		Cookie: "/run/pulse/.config/pulse/cookie", Proc: Start(t, "pulseaudio-system", cmd)}
	w.Close()
	if err := p.Proc.Ready(30*time.Second, func(ctx context.Context) error {
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return errors.New("no \"Daemon startup complete\" from pulseaudio --system")
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("pulseaudio --system ready in %s", time.Since(start).Round(time.Millisecond))
	return p
}
