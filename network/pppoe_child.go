package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// pppdRunner starts pppd processes for one session: as the agent's child
// (childRunner) or in an instance of boxagent-pppoe@.service (unitRunner).
type pppdRunner interface {
	name() string
	// passwordFD is the descriptor pppd reads the password from.
	passwordFD() int
	// run runs one pppd with args until it exits, or until ctx ends, when
	// it ends it (pppd hangs up with PADT). password is the read end of
	// the password pipe, out the write end of pppd's output pipe (stdout):
	// run closes both once pppd holds them, whatever happens. started is
	// called once pppd runs, with its pid.
	run(ctx context.Context, args []string, password, out *os.File, started func(pid int)) error
}

// childRunner runs pppd as a child bound to the agent: its own process
// group, Pdeathsig SIGTERM (from a thread that lives as long as the child:
// Linux sends it when the forking thread ends), reaped. Under systemd the
// agent's unit has KillMode=control-group, so such a child would die with
// the agent and run with the agent's (hardened) privileges: that is why
// the unitRunner exists.
type childRunner struct {
	pppd string
	ns   netns.NsHandle // where pppd runs; netns.None(): the agent's own
}

func (childRunner) name() string    { return PPPDChild }
func (childRunner) passwordFD() int { return 3 }

func (r childRunner) run(ctx context.Context, args []string, password, out *os.File, started func(int)) error {
	cmd := exec.Command(r.pppd, args...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{password} // fd 3
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}

	exited := make(chan error, 1)
	begun := make(chan error, 1)
	go func() {
		// The child's whole life runs on one locked thread: its
		// Pdeathsig follows the thread that forked it.
		err := onThreadIn(r.ns, func() error {
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("cannot start pppd: %w", err)
			}
			begun <- nil
			exited <- cmd.Wait()
			return nil
		})
		if err != nil {
			begun <- err
		}
	}()
	err := <-begun
	password.Close()
	out.Close()
	if err != nil {
		return err
	}
	started(cmd.Process.Pid)
	select {
	case err = <-exited:
	case <-ctx.Done():
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case err = <-exited:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-exited
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // whatever of the group is left
	}
	return err
}
