package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// CursorFile is the cursor's name in the state folder.
const CursorFile = "fleet.cursor"

// Cursor keeps, in one small file, the id of the last journal record the
// broker acknowledged with every record before it: after an outage or a
// reboot the link sends the records after it. A record acknowledged but
// not yet under the cursor when the agent dies is sent again: at least
// once, and receivers know records by id.
type Cursor struct{ Path string }

// Load reads the cursor; a missing file is 0 (send everything).
func (c Cursor) Load() (uint64, error) {
	if c.Path == "" {
		return 0, nil
	}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot read the fleet cursor: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot read the fleet cursor %s: %q is not a record id", c.Path, b)
	}
	return n, nil
}

// Store writes the cursor atomically.
func (c Cursor) Store(id uint64) error {
	if c.Path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(c.Path, []byte(strconv.FormatUint(id, 10)+"\n"), 0o600, atomicfile.Options{})
}

// recordRetry is how long a failed pass waits before the next.
const recordRetry = 5 * time.Second

// recordBatch is how many records one pass reads from the journal.
const recordBatch = 100

// followRecords sends the journal's ended records in id order whenever
// an operation ends or the link connects. Records of operations still
// running hold the cursor back but not the ones after them: those are
// sent and remembered, and the cursor jumps over them once the running
// one has been sent.
func (l *Link) followRecords(ctx context.Context) {
	sent := map[uint64]bool{} // acknowledged, beyond the cursor
	// A pass that failed while connected (an acknowledgement that never
	// came: a NATS stream changing leaders) is tried again after retry;
	// one that failed for want of a connection waits for the connect.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wakeRecords:
		case <-retry.C:
		}
		if err := l.sendRecords(ctx, sent); err != nil && ctx.Err() == nil {
			l.log.Debug("records wait", "err", err)
			retry.Reset(recordRetry)
		}
	}
}

func (l *Link) sendRecords(ctx context.Context, sent map[uint64]bool) error {
	l.mu.Lock()
	cursor := l.acked
	l.mu.Unlock()
	from, moved := cursor, false
	defer func() {
		if moved {
			if err := l.o.Cursor.Store(cursor); err != nil {
				l.log.Warn("cannot keep the fleet cursor", "err", err)
			}
		}
	}()
	for {
		if !l.client.IsConnectionOpen() {
			return errors.New("not connected")
		}
		ops, err := l.o.Journal.After(from, recordBatch)
		if err != nil {
			return err
		}
		if len(ops) == 0 {
			return nil
		}
		for _, op := range ops {
			from = op.ID
			if !op.State.Final() || sent[op.ID] {
				continue
			}
			b, err := json.Marshal(op)
			if err != nil {
				return err
			}
			if err := l.publish(ctx, l.topics.Ops(), false, b); err != nil {
				return fmt.Errorf("record %d: %w", op.ID, err)
			}
			sent[op.ID] = true
			// Advance over every acknowledged record; a running one (or
			// a gap the journal pruned before it ended) stops it.
			next := cursor
			for _, o := range ops {
				if o.ID <= next {
					continue
				}
				if !sent[o.ID] {
					break
				}
				next = o.ID
			}
			for id := range sent {
				if id <= next {
					delete(sent, id)
				}
			}
			if next != cursor {
				cursor, moved = next, true
				l.mu.Lock()
				l.acked = cursor
				l.mu.Unlock()
			}
		}
	}
}

func bytesReader(b []byte) io.Reader {
	if b == nil {
		return http.NoBody
	}
	return bytes.NewReader(b)
}
