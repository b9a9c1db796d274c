package guest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	Log    string // LogDir/boxagent.log unless set before Start
	// Proc is the running agent, for a test that kills it (SIGKILL, as a
	// crash would) and waits for its end with Proc.Done.
	Proc *Proc
}

// StartAgent writes config into root/etc/boxagent/config.toml, runs bin
// serve --root root --listen 127.0.0.1:0 and returns once it notified
// READY=1 (sd_notify, as systemd would see it). It is stopped with
// SIGTERM at the end of the test.
func StartAgent(t testing.TB, bin, root, config string) *Agent {
	t.Helper()
	a := &Agent{Bin: bin, Root: root}
	a.Start(t, config)
	return a
}

// Start starts the agent a describes (Bin, Root, and Log if set) as
// StartAgent does. An empty config keeps the config file under Root as
// it is: a restart sees what the agent saved.
func (a *Agent) Start(t testing.TB, config string) {
	t.Helper()
	if config != "" {
		WriteAgentConfig(t, a.Root, config)
	}
	notify := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	a.Socket = filepath.Join(a.Root, "run/boxagent/api.sock")
	if a.Log == "" {
		a.Log = filepath.Join(LogDir(t), "boxagent.log")
	}
	logf, err := os.Create(a.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the agent has its own copy
	serve := exec.Command(a.Bin, "serve", "--root", a.Root, "--listen", "127.0.0.1:0")
	serve.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	serve.Stdout, serve.Stderr = logf, logf
	a.Proc = Start(t, strings.TrimSuffix(filepath.Base(a.Log), ".log"), serve)
	a.Proc.Log = a.Log
	// Under TCG the agent's start (board detection, the journal, every
	// domain) takes seconds; Ready gives up at once if it exits instead.
	err = a.Proc.Ready(60*time.Second, func(ctx context.Context) error {
		stop := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Now()) })
		defer stop()
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return fmt.Errorf("no READY=1 on the notify socket: %w", err)
			}
			msg := string(buf[:n])
			if i := strings.Index(msg, "STATUS=serving on "); i >= 0 {
				a.HTTP = strings.Fields(msg[i+len("STATUS=serving on "):])[0]
			}
			if strings.Contains(msg, "READY=1") {
				return nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// WriteAgentConfig writes config as the config file of the agent whose
// root is root.
func WriteAgentConfig(t testing.TB, root, config string) {
	t.Helper()
	cfg := filepath.Join(root, "etc/boxagent/config.toml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Command is the agent's CLI with args, against its socket.
func (a *Agent) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(a.Bin, append(args, "--socket", a.Socket)...)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	return cmd
}

// Run runs the agent's CLI against it and returns stdout, stderr and the
// exit code.
func (a *Agent) Run(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := a.Command(args...)
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
