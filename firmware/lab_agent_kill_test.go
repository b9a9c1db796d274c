//go:build lab

package firmware

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// guestAgent is `boxagent serve` in the virtual board, under a root of
// its own (the lab's certificate in [firmware] keys), driven through its
// CLI as a user on the serial console would.
type guestAgent struct {
	*guest.Agent
	t *testing.T
}

// startGuestAgent starts the agent on root and waits for READY=1; logName
// is its log file in the test's log folder. A root that has a config
// already (a restart) keeps it. Cleanup stops it.
func startGuestAgent(t *testing.T, root, logName string) *guestAgent {
	t.Helper()
	vm.RequireGuest(t)
	bin := os.Getenv("FW_BOXAGENT")
	if bin == "" {
		t.Skip("FW_BOXAGENT is not set")
	}
	guest.Modprobe(t, guest.USBStorageModules...)
	config := ""
	if _, err := os.Stat(filepath.Join(root, "etc/boxagent/config.toml")); err != nil {
		cert := filepath.Join(os.Getenv(envLabDir), labCert)
		config = "board = \"auto\"\n[firmware]\nkeys = [\"" + cert + "\"]\n"
	}
	a := &guestAgent{Agent: &guest.Agent{Bin: bin, Root: root, Log: filepath.Join(guest.LogDir(t), logName)}, t: t}
	a.Start(t, config)
	return a
}

// run runs a CLI command and returns stdout, stderr and the exit code.
func (a *guestAgent) run(args ...string) (string, string, int) {
	a.t.Helper()
	return a.Run(a.t, args...)
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
	events := a.Command("events")
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
	stage := a.Command("fw", "stage", sha[:12], "--device", dev)
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
			a.Proc.Cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			t.Logf("killed the agent at: %s", sc.Text())
		}
	}
	stage.Wait()
	<-a.Proc.Done()
	if !killed {
		t.Fatalf("fw stage ended before the kill:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("fw stage, its agent killed: exit %d\n%s", stage.ProcessState.ExitCode(), strings.Join(lines, "\n"))
	// One exit code and one message however the connection went (reset,
	// refused, the stream cut): the operation was interrupted, and where
	// to read what it did.
	if code, last := stage.ProcessState.ExitCode(), lines[len(lines)-1]; code != 1 ||
		!strings.Contains(last, "the agent stopped during operation") || !strings.Contains(last, "boxagent history ") {
		t.Errorf("fw stage whose agent was killed: exit %d, last line %q; want exit 1 and the interrupted operation named", code, last)
	}

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
	// history ID tells the whole story: it ended at the kill, and the
	// restart removed the partial copy.
	var ops []struct {
		ID uint64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &ops); err != nil || len(ops) == 0 {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	one, _, _ := a.run("history", strconv.FormatUint(ops[0].ID, 10))
	if !strings.Contains(one, "removed what the interrupted staging left") || !strings.Contains(one, "next start found it running at") {
		t.Errorf("history %d does not tell what the restart did:\n%s", ops[0].ID, one)
	}
	if out, errOut, code := a.run("fw", "eject", "--device", dev); code != 0 {
		t.Fatalf("fw eject: exit %d\n%s%s", code, out, errOut)
	}
	plug.Unplug(t)
}
