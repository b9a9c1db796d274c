package guest

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"
)

func TestProcStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes (not with -short)")
	}
	p := Start(t, "sleeper", exec.Command("sh", "-c", "sleep 1000 & echo started; wait"))
	if err := p.Ready(10*time.Second, func(ctx context.Context) error {
		return waitLog(ctx, p.Log, "started")
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); !exited {
		t.Error("still running after Stop")
	}
	if d := time.Since(start); d > StopTimeout {
		t.Errorf("Stop took %s", d)
	}
	if err := p.Stop(); err != nil { // idempotent
		t.Error(err)
	}
}

func TestProcReadyExited(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes (not with -short)")
	}
	p := Start(t, "quitter", exec.Command("sh", "-c", "echo bye; exit 7"))
	err := p.Ready(10*time.Second, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err == nil {
		t.Fatal("Ready succeeded for a process that exited")
	}
	t.Log(err)
}

func TestLogDirStable(t *testing.T) {
	if a, b := LogDir(t), LogDir(t); a != b {
		t.Errorf("LogDir changed: %s, %s", a, b)
	}
}

func TestWaitExit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes (not with -short)")
	}
	quick := exec.Command("sleep", "0.1")
	if err := quick.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Not reaped yet: a zombie counts as exited.
	if err := WaitExit(ctx, quick.Process.Pid); err != nil {
		t.Fatal(err)
	}
	quick.Wait()

	slow := exec.Command("sleep", "100")
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	defer slow.Wait()
	defer slow.Process.Kill()
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if err := WaitExit(short, slow.Process.Pid); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}
