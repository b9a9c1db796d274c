package inotify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitExist(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(p+".tmp", nil, 0o644)
		os.Rename(p+".tmp", p)
	}()
	if err := WaitExist(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Already there.
	if err := WaitExist(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func TestWaitExistDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := WaitExist(ctx, filepath.Join(t.TempDir(), "never"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestWaitContains(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		f.WriteString("starting\n")
		time.Sleep(50 * time.Millisecond)
		f.WriteString("DHCP, IP range 10.0.0.1\n")
	}()
	if err := WaitContains(ctx, p, "DHCP, IP range"); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := WaitContains(ctx2, p, "absent"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
}

// TestWaitCount: the count is over the whole file, read again at each
// write; fewer than asked waits on.
func TestWaitCount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		n      int
		found  bool
	}{
		{"twice in two writes", []string{"CONNECTED\n", "x\n", "CONNECTED\n"}, 2, true},
		{"twice in one write", []string{"CONNECTED CONNECTED\n"}, 2, true},
		{"once of two", []string{"CONNECTED\n", "x\n"}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "log")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, w := range tc.writes {
				f.WriteString(w)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err = WaitCount(ctx, p, "CONNECTED", tc.n)
			if tc.found && err != nil {
				t.Errorf("WaitCount: %v", err)
			}
			if !tc.found && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("WaitCount = %v, want the deadline", err)
			}
		})
	}
}
