package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// CursorFile is the cursor's name in the state folder.
const CursorFile = "fleet.cursor"

// Cursor keeps, in one small file, the id of the last journal record the
// broker acknowledged with every record before it, and on a second line
// ("ahead …") the records beyond it the broker acknowledged too (a record
// of an operation still running holds the cursor back, not the ones
// after it): after an outage, a restart or a reboot the link sends the
// records after the cursor that are not ahead. A record acknowledged but
// not yet in the file when the agent dies is sent again: at least once,
// and receivers know records by id.
type Cursor struct{ Path string }

// maxAhead bounds the ids kept ahead of the cursor (the newest are kept:
// one running operation for days must not grow the file without end).
const maxAhead = 1024

// Load reads the cursor; a missing file is 0 (send everything).
func (c Cursor) Load() (uint64, error) {
	id, _, err := c.LoadAhead()
	return id, err
}

// LoadAhead reads the cursor and the records acknowledged beyond it.
func (c Cursor) LoadAhead() (uint64, map[uint64]bool, error) {
	ahead := map[uint64]bool{}
	if c.Path == "" {
		return 0, ahead, nil
	}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ahead, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("cannot read the fleet cursor: %w", err)
	}
	first, rest, _ := strings.Cut(string(b), "\n")
	n, err := strconv.ParseUint(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot read the fleet cursor %s: %q is not a record id", c.Path, first)
	}
	if ids, ok := strings.CutPrefix(strings.TrimSpace(rest), "ahead "); ok {
		for _, f := range strings.Split(ids, ",") {
			if id, err := strconv.ParseUint(f, 10, 64); err == nil && id > n {
				ahead[id] = true
			}
		}
	}
	return n, ahead, nil
}

// Store writes the cursor atomically.
func (c Cursor) Store(id uint64) error { return c.StoreAhead(id, nil) }

// StoreAhead writes the cursor and the records acknowledged beyond it.
func (c Cursor) StoreAhead(id uint64, ahead map[uint64]bool) error {
	if c.Path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return err
	}
	text := strconv.FormatUint(id, 10) + "\n"
	if len(ahead) > 0 {
		ids := slices.Sorted(maps.Keys(ahead))
		ids = ids[max(0, len(ids)-maxAhead):]
		var parts []string
		for _, a := range ids {
			parts = append(parts, strconv.FormatUint(a, 10))
		}
		text += "ahead " + strings.Join(parts, ",") + "\n"
	}
	return atomicfile.Write(c.Path, []byte(text), 0o600, atomicfile.Options{})
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
	l.mu.Lock()
	sent := l.ahead // acknowledged, beyond the cursor (kept in its file)
	l.mu.Unlock()
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
			if err := l.o.Cursor.StoreAhead(cursor, sent); err != nil {
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
			// At or under the cursor: sent, and dropped from sent when the
			// cursor jumped over them (a running one ended earlier in
			// this batch: they went out twice).
			if !op.State.Final() || sent[op.ID] || op.ID <= cursor {
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
			moved = true // the file keeps it, even if the cursor stays
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
