package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// agentProc is a boxagent daemon running as a child process.
type agentProc struct {
	t      *testing.T
	root   string
	socket string
	cmd    *exec.Cmd
	stderr *syncBuffer
	notify *net.UnixConn
	http   string
	exited chan error
}

type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // a nudge after each write, for waitFor
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote == nil {
		s.wrote = make(chan struct{}, 1)
	}
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// waitFor says whether the buffer holds want within d: the daemon logs
// some things after it answered the request that caused them.
func (s *syncBuffer) waitFor(want string, d time.Duration) bool {
	s.mu.Lock()
	if s.wrote == nil {
		s.wrote = make(chan struct{}, 1)
	}
	wrote := s.wrote
	s.mu.Unlock()
	deadline := time.After(d)
	for !strings.Contains(s.String(), want) {
		select {
		case <-wrote:
		case <-deadline:
			return false
		}
	}
	return true
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// boxagentCmd returns a command running this test binary as boxagent.
func boxagentCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BOXAGENT_AS_MAIN=1")
	return cmd
}

func requireProcesses(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the daemon as a process; skipped with -short (cross tests under qemu-user)")
	}
}

// writeConfig writes a config file under root and returns its path.
func writeConfig(t *testing.T, root, body string) string {
	t.Helper()
	p := filepath.Join(root, "etc/boxagent/config.toml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAgent starts the daemon under root and waits for READY=1 on a
// notify socket of the test's own, as systemd would.
func startAgent(t *testing.T, root string, extra ...string) *agentProc {
	t.Helper()
	return startAgentEnv(t, root, nil, extra...)
}

// startAgentEnv is startAgent with extra environment for the daemon.
func startAgentEnv(t *testing.T, root string, env []string, extra ...string) *agentProc {
	t.Helper()
	requireProcesses(t)
	notifyPath := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, root: root, socket: filepath.Join(root, "run/boxagent/api.sock"),
		stderr: &syncBuffer{}, notify: nc, exited: make(chan error, 1)}
	args := append([]string{"serve", "--root", root, "--listen", "127.0.0.1:0"}, extra...)
	p.cmd = boxagentCmd(args...)
	p.cmd.Env = append(p.cmd.Env, "NOTIFY_SOCKET="+notifyPath, "BOXAGENT_SOCKET=")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
		nc.Close()
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.stderr.String())
		}
	})
	msg := p.waitNotify("READY=1", 20*time.Second)
	if i := strings.Index(msg, "STATUS=serving on "); i >= 0 {
		p.http = strings.Fields(msg[i+len("STATUS=serving on "):])[0]
	}
	return p
}

// waitNotify reads sd_notify datagrams until one contains want.
func (p *agentProc) waitNotify(want string, d time.Duration) string {
	p.t.Helper()
	p.notify.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		n, err := p.notify.Read(buf)
		if err != nil {
			p.t.Fatalf("no %s from the daemon: %v\nlog:\n%s", want, err, p.stderr.String())
		}
		if msg := string(buf[:n]); strings.Contains(msg, want) {
			return msg
		}
	}
}

func (p *agentProc) client() *client.Client { return client.New(p.socket, "cli") }

// run runs a CLI command against this daemon and returns stdout, stderr
// and the exit code.
func (p *agentProc) run(args ...string) (string, string, int) {
	return runCLI(p.t, append(args, "--socket", p.socket)...)
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := boxagentCmd(args...)
	cmd.Env = append(cmd.Env, "TERM=dumb")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestDaemonServesBothListeners(t *testing.T) {
	root := t.TempDir()
	p := startAgent(t, root)
	ctx := context.Background()

	s, err := p.client().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Listeners.HTTP != p.http || s.Board.ID == "" || !strings.HasPrefix(s.Config.Revision, "sha256:") || !s.Config.Default {
		t.Errorf("status over the socket: %+v", s)
	}
	// Over TCP, with a session (the password the agent made).
	wc, _ := p.login(p.password())
	code, body, _ := wc.do("GET", "/api/v1/status", "")
	var s2 apitype.Status
	if err := json.Unmarshal([]byte(body), &s2); err != nil || code != 200 {
		t.Fatalf("status over TCP: %d %v", code, err)
	}
	if s2.Config.Revision != s.Config.Revision {
		t.Errorf("the two listeners disagree: %q vs %q", s2.Config.Revision, s.Config.Revision)
	}
	fi, err := os.Stat(p.socket)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode %o, want 660", perm)
	}
	// The page is served beside the API.
	code, body, _ = wc.do("GET", "/", "")
	if !strings.Contains(body, "<title>boxagent</title>") {
		t.Errorf("page: %d %.100s", code, body)
	}
}

func TestEventsAndOperations(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "board = \"auto\"\n[http]\nlisten = \"127.0.0.1:0\"\n")
	p := startAgent(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	first, err := p.client().ReloadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.State != journal.StateDone || first.Origin != journal.OriginCLI || first.Kind != "config.reload" {
		t.Errorf("operation: %+v", first)
	}
	if first.Snapshot.Revision == "" || first.Snapshot.Board == "" || len(first.Snapshot.Config) == 0 {
		t.Errorf("operation without a settings snapshot: %+v", first.Snapshot)
	}
	// Replay brings the first reload's events; once they are in, a second
	// reload must arrive live on the same stream.
	var second journal.Operation
	var seen []uint64
	err = p.client().EventsSince(ctx, 0, func(ev apitype.Event) error {
		if ev.Type != "operation" {
			return nil
		}
		var oe apitype.OperationEvent
		json.Unmarshal(ev.Data, &oe)
		if oe.State != journal.StateDone {
			return nil
		}
		seen = append(seen, oe.ID)
		if oe.ID == first.ID {
			second, err = p.client().ReloadConfig(ctx)
			return err
		}
		if second.ID != 0 && oe.ID == second.ID {
			return client.ErrStop
		}
		return nil
	})
	if err != nil || second.ID == 0 || len(seen) != 2 {
		t.Fatalf("events: seen %v, second %d, err %v", seen, second.ID, err)
	}
	got, err := p.client().Operation(ctx, first.ID)
	if err != nil || got.ID != first.ID || got.Ended == nil {
		t.Fatalf("get operation %d: %+v %v", first.ID, got, err)
	}
	_, _, code := p.run("history", fmt.Sprint(first.ID))
	if code != 0 {
		t.Errorf("history %d: exit %d", first.ID, code)
	}
}

func TestReloadKeepsOldConfigOnError(t *testing.T) {
	root := t.TempDir()
	cfgPath := writeConfig(t, root, "[journal]\nkeep = 100\n")
	p := startAgent(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	before, _ := p.client().Status(ctx)

	os.WriteFile(cfgPath, []byte("[journal]\nkeep = 5\n"), 0o600)
	_, err := p.client().ReloadConfig(ctx)
	var ae *apitype.Error
	if !errors.As(err, &ae) || ae.Code != "config.invalid" || !strings.Contains(ae.Message, "journal.keep") {
		t.Fatalf("reload of an invalid file: %v", err)
	}
	after, _ := p.client().Status(ctx)
	if after.Config.Revision != before.Config.Revision {
		t.Errorf("an invalid reload changed the config: %s -> %s", before.Config.Revision, after.Config.Revision)
	}
	// SIGHUP with the file fixed applies it, as an operation of origin auto.
	os.WriteFile(cfgPath, []byte("[journal]\nkeep = 200\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	var reloaded apitype.ConfigInfo
	err = p.client().EventsSince(ctx, 0, func(ev apitype.Event) error {
		if ev.Type == "config" {
			json.Unmarshal(ev.Data, &reloaded)
			return client.ErrStop
		}
		return nil
	})
	if err != nil || reloaded.Revision == before.Config.Revision || reloaded.Revision == "" {
		t.Fatalf("SIGHUP reload: %+v %v", reloaded, err)
	}
	ops, err := p.client().Operations(ctx, journal.Query{Origin: "auto"})
	if err != nil || len(ops) != 1 || ops[0].Kind != "config.reload" {
		t.Fatalf("SIGHUP reload not journalled: %+v %v", ops, err)
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	p := startAgent(t, t.TempDir())
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon did not exit within 5 s of SIGTERM")
	}
	t.Logf("stopped in %s", time.Since(start))
	if _, err := os.Stat(p.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestJournalSurvivesKill9(t *testing.T) {
	root := t.TempDir()
	p := startAgent(t, root)
	ctx := context.Background()
	var ids []uint64
	for i := 0; i < 3; i++ {
		op, err := p.client().ReloadConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, op.ID)
	}
	p.cmd.Process.Kill()
	<-p.exited

	// The stale socket must not stop the next start.
	p2 := startAgent(t, root)
	ops, err := p2.client().Operations(ctx, journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 {
		t.Fatalf("after kill -9: %d operations, want 3", len(ops))
	}
	for i, op := range ops {
		if want := ids[len(ids)-1-i]; op.ID != want || op.State != journal.StateDone {
			t.Errorf("operation %d: id %d state %s, want id %d done", i, op.ID, op.State, want)
		}
	}
	op, err := p2.client().ReloadConfig(ctx)
	if err != nil || op.ID <= ids[2] {
		t.Errorf("ids went backwards after restart: %d after %d (%v)", op.ID, ids[2], err)
	}
}

func TestRefusals(t *testing.T) {
	requireProcesses(t)
	cases := []struct {
		name, config string
		args         []string
		want         string
	}{
		{"non-loopback listen without password", "", []string{"--listen", "0.0.0.0:0"}, "password_hash"},
		{"non-loopback listen in config", "[http]\nlisten = \"0.0.0.0:8080\"\n", nil, "password_hash"},
		{"invalid config names key and line", "board = \"auto\"\n[journal]\nkeep = \"many\"\n", nil, "config.toml:3"},
		{"unknown key", "bogus = 1\n", nil, "bogus"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.config != "" {
				writeConfig(t, root, c.config)
			}
			args := append([]string{"serve", "--root", root}, c.args...)
			if c.args == nil {
				args = append(args, "--listen", "127.0.0.1:0")
				if strings.Contains(c.config, "0.0.0.0") {
					args = args[:len(args)-2]
				}
			}
			_, stderr, code := runCLI(t, args...)
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, c.want)
			}
			if _, err := os.Stat(filepath.Join(root, "var/lib/boxagent/journal.db")); err == nil {
				t.Errorf("a refused start created the journal")
			}
		})
	}
}

func TestLogsWithoutTimestampsUnderJournald(t *testing.T) {
	requireProcesses(t)
	root := t.TempDir()
	writeConfig(t, root, "")
	for _, c := range []struct {
		env      string
		wantTime bool
	}{{"", true}, {"JOURNAL_STREAM=8:1234", false}} {
		cmd := boxagentCmd("serve", "--root", root, "--listen", "127.0.0.1:0")
		if c.env != "" {
			cmd.Env = append(cmd.Env, c.env)
		}
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stderr).ReadString('\n')
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if got := strings.HasPrefix(line, "time="); got != c.wantTime {
			t.Errorf("%q: first log line %q", c.env, line)
		}
	}
}

// TestWatchdogPings: systemd sets WATCHDOG_USEC (and WATCHDOG_PID); the
// daemon keeps pinging at half the interval, so a ping is never as late
// as the watchdog. Six pings; their typical gap (the median, a busy
// machine delays some) must be well under the 200 ms interval.
func TestWatchdogPings(t *testing.T) {
	p := startAgentEnv(t, t.TempDir(), []string{"WATCHDOG_USEC=200000"})
	start := time.Now()
	var at []time.Time
	for len(at) < 6 {
		p.waitNotify("WATCHDOG=1", 5*time.Second)
		at = append(at, time.Now())
	}
	var gaps []time.Duration
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]))
	}
	t.Logf("first WATCHDOG=1 after %s, then every %v", at[0].Sub(start), gaps)
	slices.Sort(gaps)
	if median := gaps[len(gaps)/2]; median < 50*time.Millisecond || median > 170*time.Millisecond {
		t.Errorf("WATCHDOG=1 every %s typically, want about 100 ms (half of WATCHDOG_USEC=200000): %v", median, gaps)
	}
}

// TestTwoAgentsLinkWatchesStayQuiet: two agents on one host, each with
// its link watch. A subscription lists the links by a request that also
// reaches the other's subscription (from a process, not the kernel); the
// other must not subscribe (and so list, and so wake the first) again.
func TestTwoAgentsLinkWatchesStayQuiet(t *testing.T) {
	a, b := startAgent(t, t.TempDir()), startAgent(t, t.TempDir())
	time.Sleep(2 * time.Second)
	for name, p := range map[string]*agentProc{"first": a, "second": b} {
		if n := strings.Count(p.stderr.String(), "link watch: subscribing again"); n > 0 {
			t.Errorf("the %s agent's link watch subscribed again %d times in 2 s", name, n)
		}
	}
}
