package guest

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Agent is `boxagent serve` running in the guest (or on the host), with
// its own root: the API socket, the HTTP address it reported, and its log
// in LogDir.
type Agent struct {
	Bin    string
	Root   string
	Socket string
	HTTP   string // host:port from the READY notification's STATUS
	Log    string
}

// StartAgent writes config into root/etc/boxagent/config.toml, runs bin
// serve --root root --listen 127.0.0.1:0 and returns once it notified
// READY=1 (sd_notify, as systemd would see it). It is stopped with
// SIGTERM at the end of the test.
func StartAgent(t testing.TB, bin, root, config string) *Agent {
	t.Helper()
	cfg := filepath.Join(root, "etc/boxagent/config.toml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	notify := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	a := &Agent{Bin: bin, Root: root, Socket: filepath.Join(root, "run/boxagent/api.sock"), Log: filepath.Join(LogDir(t), "boxagent.log")}
	logf, err := os.Create(a.Log)
	if err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(bin, "serve", "--root", root, "--listen", "127.0.0.1:0")
	serve.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait(); logf.Close() })
	// Under TCG the agent's start (board detection, the journal, every
	// domain) takes seconds.
	nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("the agent did not get ready: %v (log in %s)", err, a.Log)
		}
		msg := string(buf[:n])
		if i := strings.Index(msg, "STATUS=serving on "); i >= 0 {
			a.HTTP = strings.Fields(msg[i+len("STATUS=serving on "):])[0]
		}
		if strings.Contains(msg, "READY=1") {
			return a
		}
	}
}

// Run runs the agent's CLI against it and returns stdout, stderr and the
// exit code.
func (a *Agent) Run(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(a.Bin, append(args, "--socket", a.Socket)...)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}
