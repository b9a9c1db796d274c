package vm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/inotify"
	"golang.org/x/sys/unix"
)

// waitTickets waits until the queue holds n tickets.
func waitTickets(t *testing.T, w *inotify.Watcher, qdir string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ents, _ := os.ReadDir(qdir)
		count := 0
		for _, e := range ents {
			if e.Name()[0] != '.' {
				count++
			}
		}
		if count == n {
			return
		}
		if _, err := w.Read(ctx); err != nil {
			t.Fatalf("queue never held %d tickets: %v", n, err)
		}
	}
}

func TestLockBoardFIFO(t *testing.T) {
	// The queue is the test's own, whatever queue the machine's boards
	// share (LAB_LOCK_DIR, set for a clone that takes turns with them).
	t.Setenv(EnvLockDir, "")
	c := &Cache{Dir: t.TempDir()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	rel1, err := lockBoard(ctx, c, log)
	if err != nil {
		t.Fatal(err)
	}
	qdir := filepath.Join(c.Dir, "board.queue")
	w, err := inotify.New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Add(qdir, unix.IN_MOVED_TO|unix.IN_DELETE); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 2)
	rels := make(chan func(), 2)
	for i := 2; i <= 3; i++ {
		go func(i int) {
			rel, err := lockBoard(ctx, c, log)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			rels <- rel
		}(i)
		waitTickets(t, w, qdir, i)
	}
	// A late waiter that gives up leaves no ticket behind.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := lockBoard(short, c, log); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	waitTickets(t, w, qdir, 3)
	rel1()
	if got := <-order; got != 2 {
		t.Fatalf("waiter %d went first, want 2", got)
	}
	(<-rels)()
	if got := <-order; got != 3 {
		t.Fatalf("waiter %d went second, want 3", got)
	}
	(<-rels)()
	waitTickets(t, w, qdir, 0)
}

// LAB_LOCK_DIR: a board whose cache is elsewhere still waits for the
// machine's other boards.
func TestLockBoardSharedDir(t *testing.T) {
	t.Setenv(EnvLockDir, t.TempDir())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rel, err := lockBoard(context.Background(), &Cache{Dir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := lockBoard(short, &Cache{Dir: t.TempDir()}, log); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second board with another cache took the board: err = %v, want DeadlineExceeded", err)
	}
}
