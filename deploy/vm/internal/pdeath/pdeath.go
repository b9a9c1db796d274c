// Package pdeath starts a child bound to this process with Pdeathsig.
//
// Linux sends the parent-death signal when the *thread* that forked the
// child exits, not the process, and the Go runtime ends a thread whose
// goroutine exits while locked to it. So the child is started and waited
// for from one goroutine that stays locked to its thread for the child's
// whole life.
package pdeath

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Start starts cmd with Pdeathsig SIGKILL (keeping any other SysProcAttr
// fields) and returns a channel that yields cmd.Wait's result.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
