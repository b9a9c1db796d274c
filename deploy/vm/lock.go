package vm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// lockBoard takes the lab's lock (Cache.Dir/board.lock): two boards at
// once on 2 cores only slow each other down, so a second waits for the
// first, across processes. The returned func releases it.
func lockBoard(ctx context.Context, c *Cache, log *slog.Logger) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.Dir, "board.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the board lock: %w", err)
	}
	release := func() { f.Close() } // closing drops the flock
	// The holder's pid and command, for whoever waits.
	owner := func() {
		f.Truncate(0)
		f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		owner()
		return release, nil
	}
	holder, _ := os.ReadFile(f.Name())
	log.Info("waiting for the other virtual board to power off", "lock", f.Name(), "holder", strings.TrimSpace(string(holder)))
	got := make(chan error, 1)
	go func() { got <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot take the board lock: %w", err)
		}
		owner()
		return release, nil
	case <-ctx.Done():
		// The goroutine ends when the lock is granted or the file closed.
		go func() { <-got; f.Close() }()
		return nil, fmt.Errorf("cannot take the board lock: %w", ctx.Err())
	}
}
