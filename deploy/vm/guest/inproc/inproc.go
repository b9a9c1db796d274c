// Package inproc runs the agent, `boxagent serve`, inside the test's own
// process on the virtual board: the guest tests of the domain packages
// (network, wifi) that drive it through its API and CLI. It is not part
// of package guest because it builds the whole agent (cmd/boxagent/cli),
// which imports those domain packages: their own tests import guest.
package inproc

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// StartAgent runs boxagent serve in this process with config under a
// new root, its log boxagent-NAME.log in the test's log folder, and returns
// once it notified READY=1; stop ends it.
func StartAgent(t *testing.T, name, config string) (socket, logPath string, stop func()) {
	t.Helper()
	root := t.TempDir()
	guest.WriteAgentConfig(t, root, config)
	// Readiness from sd_notify, as systemd would see it.
	notifyPath := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", notifyPath)
	logPath = filepath.Join(guest.LogDir(t), "boxagent-"+name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	go func() {
		e := &cli.Env{Stdin: strings.NewReader(""), Stdout: logf, Stderr: logf, Getenv: os.Getenv}
		served <- cli.Run(ctx, e, []string{"serve", "--root", root, "--listen", "127.0.0.1:0", "--log-level", "debug"})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-served
			logf.Close()
		})
	}
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			stop()
			t.Fatalf("no READY=1 from the agent: %v", err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	return filepath.Join(root, "run/boxagent/api.sock"), logPath, stop
}
