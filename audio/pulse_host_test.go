package audio

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPulse is a real pulseaudio started for one test: two null sinks
// ("one", "two"), the native protocol on a private socket (anonymous
// auth: the test's own user), and module-dbus-protocol. Its HOME and
// XDG_RUNTIME_DIR are temporary folders, so it touches nothing of the
// machine's.
type testPulse struct {
	Dir    string
	DBus   string // unix:path=…/pulse/dbus-socket
	Native string // unix:…/native
	cmd    *exec.Cmd
	done   chan struct{}
	log    *strings.Builder
}

// requirePulse skips where a real PulseAudio cannot run.
func requirePulse(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real pulseaudio; skipped with -short")
	}
	if _, err := exec.LookPath("pulseaudio"); err != nil {
		t.Skip("pulseaudio is not installed (apt-get install pulseaudio)")
	}
}

// startPulse starts PulseAudio in dir (a fresh short folder when ""),
// and returns once it says "Daemon startup complete".
func startPulse(t *testing.T, dir string, extra ...string) *testPulse {
	t.Helper()
	requirePulse(t)
	if dir == "" {
		// Socket paths must stay under 108 bytes: t.TempDir is too deep.
		var err error
		dir, err = os.MkdirTemp("", "pa")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	for _, d := range []string{"home", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	native := filepath.Join(dir, "native")
	script := strings.Join(append([]string{
		"load-module module-null-sink sink_name=one",
		"load-module module-null-sink sink_name=two",
		"load-module module-native-protocol-unix socket=" + native + " auth-anonymous=1",
		"load-module module-dbus-protocol",
	}, extra...), "\n") + "\n"
	pa := filepath.Join(dir, "test.pa")
	if err := os.WriteFile(pa, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--disallow-module-loading=no",
		"--use-pid-file=no", "--log-target=stderr", "--log-level=info", "-F", pa}
	cmd := exec.Command("pulseaudio", args...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
		"PULSE_RUNTIME_PATH="+filepath.Join(dir, "run", "pulse"), "DBUS_SESSION_BUS_ADDRESS=disabled:", "DISPLAY=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &testPulse{Dir: dir, DBus: "unix:path=" + filepath.Join(dir, "run", "pulse", "dbus-socket"),
		Native: "unix:" + native, cmd: cmd, done: make(chan struct{}), log: &strings.Builder{}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start pulseaudio: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			if !once && strings.Contains(line, "Daemon startup complete") {
				once = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("pulseaudio exited before it was ready:\n%s", p.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("pulseaudio not ready within 20 s:\n%s", p.log)
	}
	t.Logf("pulseaudio ready in %s", time.Since(start).Round(time.Millisecond))
	return p
}

// stop kills PulseAudio's process group and waits for it.
func (p *testPulse) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// connect opens a Client on p.
func (p *testPulse) connect(t *testing.T) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, p.DBus)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ctx, conn, Options{})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitEvent waits for an event that match accepts.
func waitEvent(t *testing.T, ch <-chan Event, what string, match func(Event) bool) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", what)
		}
	}
}

func names(ds []Device) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Name)
	}
	return fmt.Sprint(s)
}
