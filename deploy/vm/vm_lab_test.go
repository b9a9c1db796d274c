//go:build lab

package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBoot boots the board once: knobs cross in, the command's output and
// exit status come back.
func TestBoot(t *testing.T) {
	c := RequireLab(t)
	dir := t.TempDir()
	res, err := Run(context.Background(), Options{
		Cache:   c,
		Dir:     dir,
		Command: []string{"sh", "-c", `echo "knob=$LAB_KNOB guest=$LAB_GUEST"; uname -r; exit 3`},
		Env:     map[string]string{"LAB_KNOB": "it's here"},
		Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to guest init %s, wall %s", res.Boot.Round(10*time.Millisecond), res.Wall.Round(10*time.Millisecond))
	if testing.Verbose() {
		t.Logf("console:\n%s", res.ConsoleTail(20))
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3; console:\n%s", res.ExitCode, res.ConsoleTail(30))
	}
	out, _ := os.ReadFile(res.Output)
	if !strings.Contains(string(out), "knob=it's here guest=1") || !strings.Contains(string(out), c.KernelVersion) {
		t.Errorf("output %q lacks the knob or the kernel %s", out, c.KernelVersion)
	}
	if _, err := os.Stat(filepath.Join(dir, "console.log")); err != nil {
		t.Error(err)
	}
}

// TestTimeout: a guest that outlives its timeout is killed and Run says so.
func TestTimeout(t *testing.T) {
	c := RequireLab(t)
	res, err := Run(context.Background(), Options{Cache: c, Dir: t.TempDir(), Command: []string{"sleep", "600"}, Timeout: 3 * time.Second})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// QEMU start to exit: the wait for other boards in the queue (minutes
	// on a shared machine) is not the board's.
	if res == nil {
		t.Fatal("Run returned no result with its timeout")
	}
	if res.Wall > 15*time.Second {
		t.Errorf("QEMU ran %s under a 3 s timeout", res.Wall)
	}
}
