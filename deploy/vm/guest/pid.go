package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WaitExit returns once process pid has exited, or fails when ctx is done.
// It works for any process, not only children (a daemon that forked away),
// and counts a zombie as exited, where kill(pid, 0) would still succeed: it
// waits on a pidfd, which becomes readable when the process exits.
func WaitExit(ctx context.Context, pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil // already gone
	}
	if err != nil {
		return fmt.Errorf("cannot watch process %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("cannot watch process %d: %w", pid, err)
	}
	dl, _ := ctx.Deadline()
	f.SetReadDeadline(dl)
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	first := true
	err = rc.Read(func(uintptr) bool {
		// The first call only arms the poller; it returns again once
		// the pidfd is readable, i.e. the process has exited.
		if first {
			first = false
			return false
		}
		return true
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cannot see process %d exit: %w", pid, ctx.Err())
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("cannot see process %d exit: %w", pid, context.DeadlineExceeded)
		}
		return fmt.Errorf("cannot see process %d exit: %w", pid, err)
	}
	return nil
}
