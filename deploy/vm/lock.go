package vm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// EnvLockDir, when set, holds the board queue and lock instead of the
// cache folder: a checkout with a cache of its own still takes turns with
// the machine's other boards (LAB_LOCK_DIR=/work/main/.cache/lab).
const EnvLockDir = "LAB_LOCK_DIR"

// lockBoard waits for the board: two boards at once on 2 cores only slow
// each other down, so a second waits for the first, across processes.
//
// Waiters queue first-come first-served (a bare flock is not fair: a
// process that boots board after board would starve the others). Each
// waiter holds an flock on its own ticket in Cache.Dir/board.queue and
// waits, with a blocking flock, on the ticket just ahead of it: that is
// granted when the one ahead releases or dies, with no polling. Then it
// takes Cache.Dir/board.lock, which older builds of the harness use alone.
// The returned func releases both.
func lockBoard(ctx context.Context, c *Cache, log *slog.Logger) (func(), error) {
	dir := c.Dir
	if d := os.Getenv(EnvLockDir); d != "" {
		dir = d
	}
	qdir := filepath.Join(dir, "board.queue")
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the board queue: %w", err)
	}
	name := fmt.Sprintf("%020d-%d", time.Now().UnixNano(), os.Getpid())
	// Lock the ticket before it appears in the queue, so nobody takes it
	// for the ticket of a dead process.
	tmp := filepath.Join(qdir, "."+name)
	ticket, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create a board ticket: %w", err)
	}
	fmt.Fprintf(ticket, "%d %s\n", os.Getpid(), strings.Join(os.Args, " "))
	if err := unix.Flock(int(ticket.Fd()), unix.LOCK_EX); err != nil {
		ticket.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("cannot lock the board ticket: %w", err)
	}
	mine := filepath.Join(qdir, name)
	if err := os.Rename(tmp, mine); err != nil {
		ticket.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("cannot queue for the board: %w", err)
	}
	drop := func() {
		os.Remove(mine) // before the close: the next waiter then sees it gone
		ticket.Close()
	}
	logged := false
	waiting := func(path string) func() {
		return func() {
			if !logged {
				holder, _ := os.ReadFile(path)
				log.Info("waiting for the other virtual board to power off", "ahead", strings.TrimSpace(string(holder)))
				logged = true
			}
		}
	}
	for {
		ahead := ticketAhead(qdir, name)
		if ahead == "" {
			break
		}
		if _, err := flockCtx(ctx, ahead, false, false, waiting(ahead)); err != nil {
			drop()
			return nil, fmt.Errorf("cannot take the board: %w", err)
		}
		// Granted: the one ahead released (and removed its ticket) or
		// died (and left it behind).
		os.Remove(ahead)
	}
	lockPath := filepath.Join(dir, "board.lock")
	f, err := flockCtx(ctx, lockPath, true, true, waiting(lockPath))
	if err != nil {
		drop()
		return nil, fmt.Errorf("cannot take the board lock: %w", err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
	return func() {
		f.Close()
		drop()
	}, nil
}

// ticketAhead returns the path of the ticket just before name in the
// queue, or "" when name is first.
func ticketAhead(qdir, name string) string {
	ents, _ := os.ReadDir(qdir) // sorted by name: by time of arrival
	ahead := ""
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			continue
		}
		if n >= name {
			break
		}
		ahead = filepath.Join(qdir, n)
	}
	return ahead
}

// flockCtx waits until path can be locked exclusively, or ctx is done.
// With keep it returns the file holding the lock; else it unlocks and
// returns nil. A ticket (create false) that is gone counts as free.
func flockCtx(ctx context.Context, path string, create, keep bool, onWait func()) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		if !create && os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	done := func() (*os.File, error) {
		if keep {
			return f, nil
		}
		f.Close()
		return nil, nil
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		return done()
	}
	if onWait != nil {
		onWait()
	}
	got := make(chan error, 1)
	gaveUp := make(chan struct{})
	go func() {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		select {
		case got <- err:
		case <-gaveUp:
			f.Close() // granted after all: drop it
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, err
		}
		return done()
	case <-ctx.Done():
		close(gaveUp)
		return nil, ctx.Err()
	}
}
