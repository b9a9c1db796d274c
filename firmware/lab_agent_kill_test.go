//go:build lab

package firmware

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// guestAgent is `boxagent serve` in the virtual board, under a root of
// its own (the lab's certificate in [firmware] keys), driven through its
// CLI as a user on the serial console would.
type guestAgent struct {
	t         *testing.T
	bin, root string
	sock      string
	serve     *exec.Cmd
	exited    chan struct{}
}

// startGuestAgent starts the agent on root and waits for READY=1; logName
// is its log file in the test's log folder. Cleanup stops it.
func startGuestAgent(t *testing.T, root, logName string) *guestAgent {
	t.Helper()
	vm.RequireGuest(t)
	bin := os.Getenv("FW_BOXAGENT")
	if bin == "" {
		t.Skip("FW_BOXAGENT is not set")
	}
	guest.Modprobe(t, guest.USBStorageModules...)
	cfg := filepath.Join(root, "etc/boxagent/config.toml")
	if _, err := os.Stat(cfg); err != nil {
		os.MkdirAll(filepath.Dir(cfg), 0o755)
		cert := filepath.Join(os.Getenv(envLabDir), labCert)
		if err := os.WriteFile(cfg, []byte("board = \"auto\"\n[firmware]\nkeys = [\""+cert+"\"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	notify := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	logf, err := os.Create(filepath.Join(guest.LogDir(t), logName))
	if err != nil {
		t.Fatal(err)
	}
	a := &guestAgent{t: t, bin: bin, root: root, sock: filepath.Join(root, "run/boxagent/api.sock"), exited: make(chan struct{})}
	a.serve = exec.Command(bin, "serve", "--root", root, "--listen", "127.0.0.1:0")
	a.serve.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	a.serve.Stdout, a.serve.Stderr = logf, logf
	if err := a.serve.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.serve.Wait(); logf.Close(); close(a.exited) }()
	t.Cleanup(func() { a.serve.Process.Signal(syscall.SIGTERM); <-a.exited })
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("the agent did not get ready: %v (log in %s)", err, logf.Name())
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return a
		}
	}
}

// command is a CLI command against the agent.
func (a *guestAgent) command(args ...string) *exec.Cmd {
	cmd := exec.Command(a.bin, append(args, "--socket", a.sock)...)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	return cmd
}

// run runs a CLI command and returns stdout, stderr and the exit code.
func (a *guestAgent) run(args ...string) (string, string, int) {
	a.t.Helper()
	cmd := a.command(args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestGuestAgentKilledMidCopy kills `boxagent serve` with SIGKILL while
// `boxagent fw stage` writes (the agent killed, the box keeps power):
// afterwards no file has the package's name, only the partial temporary
// copy on the mount the kernel kept; the agent started again removes it
// at once (not at the next staging), leaves the mount read-only, and its
// journal shows the staging as interrupted. It uses the "kill" stick
// before TestGuestKillMidCopy does, and leaves it without update.zip.
func TestGuestAgentKilledMidCopy(t *testing.T) {
	root := t.TempDir()
	a := startGuestAgent(t, root, "boxagent-kill.log")
	out, errOut, code := a.run("fw", "add", filepath.Join(os.Getenv(envLabDir), labMedium))
	if code != 0 {
		t.Fatalf("fw add: exit %d\n%s%s", code, out, errOut)
	}
	sha := strings.Fields(out)[1]

	// The agent's events say when it knows the stick.
	events := a.command("events")
	evOut, err := events.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { events.Process.Kill(); events.Wait() }()
	plug := guest.PlugStick(t, "kill")
	dev := filepath.Base(plug.Partitions[0])
	sc := bufio.NewScanner(evOut)
	for known := false; !known; {
		if !sc.Scan() {
			t.Fatalf("the agent's events ended before it saw the stick: %v", sc.Err())
		}
		if l := sc.Text(); strings.Contains(l, " fw ") && strings.Contains(l, `"LABkill"`) {
			out, _, _ = a.run("fw", "sticks")
			known = strings.Contains(out, dev)
		}
	}

	// Staging, killed at its first progress line of the write.
	stage := a.command("fw", "stage", sha[:12], "--device", dev)
	stderr, err := stage.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stage.Start(); err != nil {
		t.Fatal(err)
	}
	sc = bufio.NewScanner(stderr)
	var lines []string
	killed := false
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !killed && strings.Contains(sc.Text(), "writing update.zip") {
			a.serve.Process.Signal(syscall.SIGKILL)
			killed = true
			t.Logf("killed the agent at: %s", sc.Text())
		}
	}
	stage.Wait()
	<-a.exited
	if !killed {
		t.Fatalf("fw stage ended before the kill:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("fw stage, its agent killed: exit %d\n%s", stage.ProcessState.ExitCode(), strings.Join(lines, "\n"))

	// The kernel keeps the agent's mount: the stick holds the partial
	// copy and no update.zip.
	hp := HostPaths{Sys: "/sys", Dev: "/dev", Proc: "/proc", MountBase: filepath.Join(root, "run/boxagent/usb")}
	mounts := func() []Mount {
		all, err := Mounts(hp)
		if err != nil {
			t.Fatal(err)
		}
		var ours []Mount
		for _, m := range all {
			if strings.HasPrefix(m.Dir, hp.MountBase+"/") {
				ours = append(ours, m)
			}
		}
		return ours
	}
	mm := mounts()
	if len(mm) != 1 || mm[0].ReadOnly() {
		t.Fatalf("the agent's mounts after the kill: %+v", mm)
	}
	dir := mm[0].Dir
	fi, err := os.Stat(filepath.Join(dir, TempName))
	if err != nil {
		t.Fatalf("no %s after the kill: %v", TempName, err)
	}
	t.Logf("%s after the kill: %s of %s", TempName, human(fi.Size()), os.Getenv("FW_SHA_MEDIUM")[:12])
	if _, err := os.Stat(filepath.Join(dir, "update.zip")); err == nil {
		t.Error("update.zip exists after the agent was killed mid-copy")
	}

	// Started again: the partial copy goes at once, the mount turns
	// read-only, the journal says the staging was interrupted.
	a = startGuestAgent(t, root, "boxagent-kill-restart.log")
	if _, err := os.Stat(filepath.Join(dir, TempName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after the restart: %v", TempName, err)
	}
	if mm := mounts(); len(mm) != 1 || !mm[0].ReadOnly() {
		t.Errorf("the agent's mounts after the restart: %+v", mm)
	}
	out, _, _ = a.run("history", "--kind", "fw.stage", "--json")
	if !strings.Contains(out, `"state": "interrupted"`) || !strings.Contains(out, sha) {
		t.Errorf("the journal does not show the staging as interrupted:\n%s", out)
	}
	if out, errOut, code := a.run("fw", "eject", "--device", dev); code != 0 {
		t.Fatalf("fw eject: exit %d\n%s%s", code, out, errOut)
	}
	plug.Unplug(t)
}
