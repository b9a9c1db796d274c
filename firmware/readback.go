package firmware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// readBackRegion is how much of the copy is written before it is read back
// from the stick: each region is synced and dropped from the page cache,
// then read and hashed while the next ones are written. Large enough that
// the syncs cost no more than the writeback the kernel does anyway, small
// enough that little is left to read back once the write ends.
const readBackRegion = 8 << 20

// errAbandoned is what the read-back reads once the write failed: the
// writer's error is the one to report.
var errAbandoned = errors.New("the write was abandoned")

// readBack verifies the temporary copy from the stick while it is written:
// the hashing pass Verify would make (planned on the store's copy) reads
// the copy through it, and a read of bytes the writer has not written yet
// waits for them. Each region is synced to the stick and dropped from the
// page cache before it is read, so every byte hashed came back from the
// stick after it was written, as with a read-back after the whole write;
// a region is dropped again once read, so a large package does not evict
// the box's page cache. The write and the read-back then overlap: the
// stick's writes are I/O, the hashing is CPU.
type readBack struct {
	path   string
	size   int64
	region int64
	hook   func(path string, off, end int64) // Stager.written

	mu      sync.Mutex
	written int64
	failed  bool
	wake    chan struct{} // a nudge after each change of written or failed

	// Only the pass's reading goroutine uses these.
	ctx     context.Context
	f       *os.File
	ready   int64 // [0, ready) is synced, dropped and may be read
	dropped int64 // [0, dropped) was read and dropped again

	pass      *hashPass
	done      chan struct{}
	err       error        // the pass's, once done is closed
	reporting atomic.Bool  // the write is over: verify progress may be reported
	reported  atomic.Int64 // the last verify progress reported
	read      atomic.Int64 // bytes read back and hashed so far
}

// startReadBack plans the pass on the store's copy (src) and starts it
// over path. It returns nil when the pass cannot be planned (Stage then
// reads the copy back after the write, and Verify reports why).
func (s *Stager) startReadBack(ctx context.Context, src io.ReaderAt, size int64, path string, pol Policy, progress StageProgressFunc) *readBack {
	pass, err := planPass(src, size, pol)
	if err != nil {
		return nil
	}
	region := s.region
	if region <= 0 {
		region = readBackRegion
	}
	rb := &readBack{path: path, size: size, region: region, hook: s.written, wake: make(chan struct{}, 1),
		ctx: ctx, pass: pass, done: make(chan struct{})}
	start := s.clock()
	go func() {
		defer close(rb.done)
		rb.err = pass.run(ctx, rb, size, func(_ string, done, total int64) {
			rb.read.Store(done)
			if rb.reporting.Load() {
				rb.reported.Store(done)
				progress(phaseProgress("verify", done, total, s.clock().Sub(start)))
			}
		})
		if rb.f != nil {
			rb.f.Close()
		}
	}()
	return rb
}

// wrote tells the read-back that [0, n) is written.
func (rb *readBack) wrote(n int64) {
	rb.mu.Lock()
	rb.written = n
	rb.mu.Unlock()
	rb.nudge()
}

// abandon stops the read-back: the write failed.
func (rb *readBack) abandon() {
	rb.mu.Lock()
	rb.failed = true
	rb.mu.Unlock()
	rb.nudge()
}

func (rb *readBack) nudge() {
	select {
	case rb.wake <- struct{}{}:
	default:
	}
}

// finish waits for the pass once the write is over, reporting its
// progress from now on, and returns the pass hashed from the stick.
func (rb *readBack) finish(ctx context.Context, progress StageProgressFunc, start func() StageProgress) (*hashPass, error) {
	rb.reporting.Store(true)
	select {
	case <-rb.done:
	case <-ctx.Done():
		rb.abandon()
		<-rb.done
		return nil, ctx.Err()
	}
	if rb.err != nil {
		return nil, rb.err
	}
	if rb.reported.Load() != rb.size {
		// The pass was done before the write's last fsync was: say so.
		progress(start())
	}
	return rb.pass, nil
}

// stop abandons the read-back and waits for its goroutine.
func (rb *readBack) stop() {
	rb.abandon()
	<-rb.done
}

// close stops the read-back if it still runs and releases its pass.
func (rb *readBack) close() {
	rb.stop()
	rb.pass.close()
}

// waitWritten blocks until [0, n) is written.
func (rb *readBack) waitWritten(n int64) error {
	for {
		rb.mu.Lock()
		written, failed := rb.written, rb.failed
		rb.mu.Unlock()
		switch {
		case written >= n:
			return nil
		case failed:
			return errAbandoned
		}
		select {
		case <-rb.wake:
		case <-rb.ctx.Done():
			return rb.ctx.Err()
		}
	}
}

// ReadAt reads [off, off+len(p)) of the copy from the stick, once the
// regions holding it are written, synced and dropped from the cache.
func (rb *readBack) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	for rb.ready < end && rb.ready < rb.size {
		next := min(rb.ready+rb.region, rb.size)
		if err := rb.waitWritten(next); err != nil {
			return 0, err
		}
		if rb.f == nil {
			f, err := os.Open(rb.path)
			if err != nil {
				return 0, fmt.Errorf("cannot open the copy on the stick: %w", err)
			}
			rb.f = f
		}
		if err := settleRange(rb.f, rb.ready, next-rb.ready); err != nil {
			return 0, err
		}
		if rb.hook != nil {
			rb.hook(rb.path, rb.ready, next)
		}
		rb.ready = next
	}
	n, err := rb.f.ReadAt(p, off)
	if n > 0 && off+int64(n) > rb.dropped {
		// The bytes are in the pass's buffer now; keep the cache for
		// the box. Advice only: a refusal costs memory, not correctness.
		dropRange(rb.f, rb.dropped, off+int64(n)-rb.dropped)
		rb.dropped = off + int64(n)
	}
	return n, err
}
