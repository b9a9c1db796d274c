package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm/internal/pdeath"
	"github.com/boxagent/boxagent/internal/inotify"
)

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 5 * time.Second

// Proc is a process started for a test: in its own process group, bound to
// the test binary (Pdeathsig), output in Log, stopped at the test's cleanup.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // path of its stdout+stderr

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Start starts cmd for t. Its stdout and stderr go to LogDir(t)/NAME.log
// unless already set.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, Log: filepath.Join(LogDir(t), name+".log"), done: make(chan struct{})}
	if cmd.Stdout == nil || cmd.Stderr == nil {
		f, err := os.Create(p.Log)
		if err != nil {
			t.Fatalf("cannot create the log of %s: %v", name, err)
		}
		defer f.Close() // the child has its own copy
		if cmd.Stdout == nil {
			cmd.Stdout = f
		}
		if cmd.Stderr == nil {
			cmd.Stderr = f
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	exited, err := pdeath.Start(cmd)
	if err != nil {
		t.Fatalf("cannot start %s: %v", name, err)
	}
	go func() {
		p.waitErr = <-exited
		close(p.done)
	}()
	t.Cleanup(func() {
		// A daemon that died in the test (PulseAudio killed by a signal)
		// says so, not only its clients' "connection closed".
		if exited, werr := p.Exited(); exited && werr != nil {
			t.Logf("%s exited before the test's end: %v", name, werr)
		}
		if err := p.Stop(); err != nil {
			t.Logf("%s: %v", name, err)
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Ready waits up to timeout for check to succeed; it gives up early, with
// the log's tail, when the process exits first.
func (p *Proc) Ready(timeout time.Duration, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-stop:
		}
	}()
	err := check(ctx)
	if err == nil {
		return nil
	}
	if exited, werr := p.Exited(); exited {
		return fmt.Errorf("cannot start %s: it exited (%v) before it was ready; log:\n%s", p.Name, werr, p.LogTail(20))
	}
	return fmt.Errorf("cannot start %s within %s: %w; log:\n%s", p.Name, timeout, err, p.LogTail(20))
}

// LogTail returns the last n lines of the log.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.Log, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM to the process group, SIGKILL after StopTimeout, and
// kills whatever of the group is left once the leader has exited. It
// returns an error only when the process had to be killed.
func (p *Proc) Stop() error {
	var err error
	p.stopOnce.Do(func() {
		pgid := p.Cmd.Process.Pid
		if exited, _ := p.Exited(); !exited {
			syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(StopTimeout):
				syscall.Kill(-pgid, syscall.SIGKILL)
				<-p.done
				err = fmt.Errorf("cannot stop %s with SIGTERM within %s: killed", p.Name, StopTimeout)
			}
		}
		// Children that forked away from the leader but kept the group.
		if e := syscall.Kill(-pgid, syscall.SIGKILL); e != nil && !errors.Is(e, syscall.ESRCH) {
			err = errors.Join(err, fmt.Errorf("cannot kill what is left of %s: %w", p.Name, e))
		}
	})
	return err
}

// StartDaemon starts cmd and waits for it to be ready (check, within
// timeout); it fails t otherwise.
func StartDaemon(t testing.TB, name string, cmd *exec.Cmd, timeout time.Duration, check func(ctx context.Context) error) *Proc {
	t.Helper()
	start := time.Now()
	p := Start(t, name, cmd)
	if err := p.Ready(timeout, check); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s ready in %s", name, time.Since(start).Round(time.Millisecond))
	return p
}

// waitLog waits until the log file contains substr.
func waitLog(ctx context.Context, path, substr string) error {
	return inotify.WaitContains(ctx, path, substr)
}
