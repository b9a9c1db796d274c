// Package inotify waits for file system events with deadlines, without
// polling: the inotify descriptor is non-blocking and registered with the Go
// runtime poller, so a read honours the context's deadline and cancellation.
//
// The agent's watches (a sound server's socket appearing, a damaged
// journal moved aside) and the virtual board's (requests the guest writes
// into the results share, sockets and files its daemons create) read
// their events here.
package inotify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Event is one inotify event.
type Event struct {
	Wd   int
	Mask uint32
	Name string
}

// Watcher is an inotify instance.
type Watcher struct {
	f   *os.File
	buf []byte
}

// New returns a watcher; close it with Close.
func New() (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cannot create an inotify instance: %w", err)
	}
	return &Watcher{f: os.NewFile(uintptr(fd), "inotify"), buf: make([]byte, 64*1024)}, nil
}

// Add watches path for the events in mask (unix.IN_*).
func (w *Watcher) Add(path string, mask uint32) (int, error) {
	wd, err := unix.InotifyAddWatch(int(w.f.Fd()), path, mask)
	if err != nil {
		return 0, fmt.Errorf("cannot watch %s: %w", path, err)
	}
	return wd, nil
}

// Close releases the watcher; a pending Read returns an error.
func (w *Watcher) Close() error { return w.f.Close() }

// Read blocks until at least one event arrives or ctx is done.
func (w *Watcher) Read(ctx context.Context) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	if err := w.f.SetReadDeadline(dl); err != nil {
		return nil, fmt.Errorf("cannot set the inotify deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	n, err := w.f.Read(w.buf)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// ctx's deadline, reached by the poller before ctx's timer
			return nil, context.DeadlineExceeded
		}
		return nil, fmt.Errorf("cannot read inotify events: %w", err)
	}
	var evs []Event
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		raw := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
		name := w.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
		evs = append(evs, Event{Wd: int(raw.Wd), Mask: raw.Mask, Name: string(bytes.TrimRight(name, "\x00"))})
		off += unix.SizeofInotifyEvent + int(raw.Len)
	}
	return evs, nil
}

// WaitExist returns once path exists (its parent directory must exist) or
// ctx is done.
func WaitExist(ctx context.Context, path string) error {
	w, err := New()
	if err != nil {
		return err
	}
	defer w.Close()
	dir, base := filepath.Split(path)
	if _, err := w.Add(filepath.Clean(dir), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return err
	}
	for {
		// Check after the watch is in place, so a creation cannot slip
		// between the check and the watch.
		if _, err := os.Lstat(path); err == nil {
			return nil
		}
		evs, err := w.Read(ctx)
		if err != nil {
			return fmt.Errorf("cannot see %s appear: %w", path, err)
		}
		for _, e := range evs {
			if e.Name == base {
				return nil
			}
		}
	}
}

// WaitContains returns once the file at path contains substr, re-reading it
// whenever it is written, or fails when ctx is done. The file must exist.
func WaitContains(ctx context.Context, path, substr string) error {
	return WaitCount(ctx, path, substr, 1)
}

// WaitCount returns once the file at path holds substr n times in all,
// counting again at each write, or fails when ctx is done. The file must
// exist.
func WaitCount(ctx context.Context, path, substr string, n int) error {
	w, err := New()
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Add(path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		return err
	}
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", path, err)
		}
		if bytes.Count(b, []byte(substr)) >= n {
			return nil
		}
		if _, err := w.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				if n == 1 {
					return fmt.Errorf("cannot find %q in %s: %w", substr, path, err)
				}
				return fmt.Errorf("cannot find %q %d times in %s: %w", substr, n, path, err)
			}
			return err
		}
	}
}
