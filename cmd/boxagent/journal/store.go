package journal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockTimeout bounds the wait for another process (an agent still shutting
// down) to let go of the file.
const lockTimeout = 2 * time.Second

var (
	bucketOps      = []byte("ops")
	bucketProgress = []byte("progress")
	bucketRunning  = []byte("running")
	bucketMeta     = []byte("meta")
	keyCount       = []byte("count")
)

// Store is an open journal. It is safe for concurrent use: bbolt serialises
// the writers and lets readers run beside them.
type Store struct {
	db        *bbolt.DB
	keep      int
	clock     func() time.Time
	recovered []Operation // what Open marked interrupted
	damage    *Damage
}

// Open opens the journal at path, creating it (and its directory, mode 0700)
// if needed, with mode 0600. Every operation still running in the file was
// cut short by the agent's death: Open marks it StateInterrupted, ends it at
// its last sign of life (its newest progress entry, else its start) with a
// "journal.interrupted" Failure saying when the next start found it, and
// Interrupted lists them. Open also
// drops the oldest operations beyond opts.Keep.
//
// A damaged file (truncated, flipped bits, records that are not JSON: what
// a power cut on cheap flash leaves) is not an error: Open renames it to
// path.corrupt-<time>, starts a new journal and says so in Damage, so the
// agent starts rather than crash in a loop.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the journal directory: %w", err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	return openOrMoveAside(path, opts, now())
}

// openChecked opens the file, checks every page and record, then recovers
// it; a damagedError says the file's content is at fault.
func openChecked(path string, opts Options) (*Store, error) {
	s := &Store{keep: opts.Keep, clock: opts.Now}
	if s.keep <= 0 {
		s.keep = DefaultKeep
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	db, err := openBolt(path, opts.NoFollow)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Store, error) {
		_ = guarded("close", db.Close)
		return nil, err
	}
	if err := checkFile(path, db); err != nil {
		return fail(err)
	}
	s.db = db
	// A write transaction fsyncs the file twice even when it changes
	// nothing: on a warm start with nothing to recover, only read.
	clean := false
	err = guarded("recover", func() error {
		if err := db.View(func(tx *bbolt.Tx) error { clean = s.clean(tx); return nil }); err != nil || clean {
			return err
		}
		return db.Update(s.recover)
	})
	var de *damagedError
	if errors.As(err, &de) {
		return fail(err)
	}
	if err != nil {
		return fail(fmt.Errorf("cannot recover journal %s: %w", path, err))
	}
	return s, nil
}

// clean says whether recover would change nothing: every bucket there,
// no operation running, the count right and within keep.
func (s *Store) clean(tx *bbolt.Tx) bool {
	for _, name := range [][]byte{bucketOps, bucketProgress, bucketRunning, bucketMeta} {
		if tx.Bucket(name) == nil {
			return false
		}
	}
	if k, _ := tx.Bucket(bucketRunning).Cursor().First(); k != nil {
		return false
	}
	var n uint64
	c := tx.Bucket(bucketOps).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n == count(tx) && n <= uint64(s.keep)
}

// recover creates the buckets, marks the running operations interrupted,
// recounts the operations and prunes them to s.keep.
func (s *Store) recover(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketOps, bucketProgress, bucketRunning, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	ops, running := tx.Bucket(bucketOps), tx.Bucket(bucketRunning)

	var ids [][]byte
	if err := running.ForEach(func(k, _ []byte) error {
		ids = append(ids, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return err
	}
	now := s.now()
	for _, k := range ids {
		if err := running.Delete(k); err != nil {
			return err
		}
		op, err := decode(k, ops.Get(k))
		if err != nil {
			return err
		}
		if op == nil || op.State.Final() {
			continue
		}
		// The operation ended when the agent died, not when it started
		// again (minutes or days later): its last sign of life.
		if err := loadProgress(tx, op); err != nil {
			return err
		}
		ended := op.Started
		if n := len(op.Progress); n > 0 && op.Progress[n-1].Time.After(ended) {
			ended = op.Progress[n-1].Time
		}
		op.State = StateInterrupted
		op.Ended = &ended
		failure := interruptedFailure
		failure.Message += "; the agent's next start found it running at " + now.Format(time.RFC3339)
		op.Error = &failure
		progress := op.Progress
		op.Progress, op.ProgressDropped = nil, 0
		if err := put(ops, op); err != nil {
			return err
		}
		op.Progress = progress
		s.recovered = append(s.recovered, *op)
	}

	// The count is cheap to rebuild here, and rebuilding it heals a
	// file written by an older version or edited by hand.
	var n uint64
	c := ops.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	if err := setCount(tx, n); err != nil {
		return err
	}
	return s.prune(tx)
}

// Recovered is how many operations Open found running and marked
// interrupted.
func (s *Store) Recovered() int { return len(s.recovered) }

// Interrupted is the operations Open found running and marked interrupted,
// as it left them, oldest first: what a domain cleans up after them it
// records with AddRecovery.
func (s *Store) Interrupted() []Operation { return slices.Clone(s.recovered) }

// AddRecovery appends to an interrupted operation what the agent's next
// start did about it (a partial copy removed, a mount left read-only),
// stamped now: `boxagent history ID` then shows the whole story. Any other
// operation is refused with ErrInvalid.
func (s *Store) AddRecovery(id uint64, message string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		k := key(id)
		op, err := decode(k, tx.Bucket(bucketOps).Get(k))
		switch {
		case err != nil:
			return err
		case op == nil:
			return ErrNotFound
		case op.State != StateInterrupted:
			return fmt.Errorf("%w: operation %d is %s, not interrupted", ErrInvalid, id, op.State)
		}
		v, err := json.Marshal(Progress{Time: s.now(), Message: message})
		if err != nil {
			return err
		}
		return appendProgress(tx, k, v)
	})
	if err != nil {
		return fmt.Errorf("cannot add to operation %d: %w", id, err)
	}
	return nil
}

// Close closes the file. Operations still running stay running in it, and
// the next Open marks them interrupted.
func (s *Store) Close() error { return s.db.Close() }

// Begin records a new running operation and returns it with its ID, Started
// and State set. It ignores the ID, State, Ended, Progress, Result and Error
// it is given. Kind must be set, Origin must be one of the Origin constants
// and Request and Snapshot.Config, when set, must be JSON; otherwise Begin
// returns ErrInvalid and writes nothing. IDs only grow, across restarts too.
func (s *Store) Begin(op Operation) (Operation, error) {
	switch {
	case op.Kind == "":
		return Operation{}, fmt.Errorf("cannot begin an operation: %w: kind is empty", ErrInvalid)
	case !op.Origin.valid():
		return Operation{}, fmt.Errorf("cannot begin %s: %w: unknown origin %q", op.Kind, ErrInvalid, op.Origin)
	case len(op.Request) > 0 && !json.Valid(op.Request):
		return Operation{}, fmt.Errorf("cannot begin %s: %w: request is not JSON", op.Kind, ErrInvalid)
	case len(op.Snapshot.Config) > 0 && !json.Valid(op.Snapshot.Config):
		return Operation{}, fmt.Errorf("cannot begin %s: %w: snapshot config is not JSON", op.Kind, ErrInvalid)
	}
	op.ID = 0
	op.State = StateRunning
	op.Started = s.now()
	op.Ended = nil
	op.Progress, op.ProgressDropped = nil, 0
	op.Result, op.Error = nil, nil

	err := s.db.Update(func(tx *bbolt.Tx) error {
		ops := tx.Bucket(bucketOps)
		id, err := ops.NextSequence()
		if err != nil {
			return err
		}
		op.ID = id
		if err := put(ops, &op); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRunning).Put(key(id), []byte{}); err != nil {
			return err
		}
		if err := setCount(tx, count(tx)+1); err != nil {
			return err
		}
		return s.prune(tx)
	})
	if err != nil {
		return Operation{}, fmt.Errorf("cannot begin %s: %w", op.Kind, err)
	}
	return op, nil
}

// AddProgress appends p to a running operation, stamping it now if p.Time is
// zero. Beyond MaxProgress entries it drops the oldest but the first. It
// returns ErrNotFound for an unknown id and ErrFinished once the operation
// has ended.
func (s *Store) AddProgress(id uint64, p Progress) error {
	if p.Time.IsZero() {
		p.Time = s.now()
	}
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cannot encode progress of operation %d: %w", id, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		k := key(id)
		if tx.Bucket(bucketOps).Get(k) == nil {
			return ErrNotFound
		}
		if tx.Bucket(bucketRunning).Get(k) == nil {
			return ErrFinished
		}
		return appendProgress(tx, k, v)
	})
	if err != nil {
		return fmt.Errorf("cannot add progress to operation %d: %w", id, err)
	}
	return nil
}

// Finish ends a running operation with its result or failure and returns it
// whole, progress included. An empty state means StateDone when failure is
// nil and StateFailed otherwise; a non-empty one (StateCancelled …) must be
// final and is recorded as given. It returns ErrNotFound for an unknown id,
// ErrFinished if the operation has already ended, and ErrInvalid for a state
// that is not final or a result that is not JSON.
func (s *Store) Finish(id uint64, result json.RawMessage, failure *Failure, state State) (Operation, error) {
	switch {
	case state == "" && failure == nil:
		state = StateDone
	case state == "":
		state = StateFailed
	case !state.Final():
		return Operation{}, fmt.Errorf("cannot finish operation %d: %w: %q is not a final state", id, ErrInvalid, state)
	}
	if len(result) > 0 && !json.Valid(result) {
		return Operation{}, fmt.Errorf("cannot finish operation %d: %w: result is not JSON", id, ErrInvalid)
	}
	var op *Operation
	err := s.db.Update(func(tx *bbolt.Tx) error {
		k := key(id)
		ops, running := tx.Bucket(bucketOps), tx.Bucket(bucketRunning)
		var err error
		if op, err = decode(k, ops.Get(k)); err != nil {
			return err
		}
		if op == nil {
			return ErrNotFound
		}
		if running.Get(k) == nil {
			return ErrFinished
		}
		now := s.now()
		op.State, op.Ended = state, &now
		op.Result = result
		if failure != nil {
			f := *failure
			op.Error = &f
		}
		if err := put(ops, op); err != nil {
			return err
		}
		if err := running.Delete(k); err != nil {
			return err
		}
		return loadProgress(tx, op)
	})
	if err != nil {
		return Operation{}, fmt.Errorf("cannot finish operation %d: %w", id, err)
	}
	return *op, nil
}

// Get returns one operation, progress included, or ErrNotFound.
func (s *Store) Get(id uint64) (Operation, error) {
	var op *Operation
	err := s.db.View(func(tx *bbolt.Tx) error {
		k := key(id)
		var err error
		if op, err = decode(k, tx.Bucket(bucketOps).Get(k)); err != nil {
			return err
		}
		if op == nil {
			return ErrNotFound
		}
		return loadProgress(tx, op)
	})
	if err != nil {
		return Operation{}, fmt.Errorf("cannot get operation %d: %w", id, err)
	}
	return *op, nil
}

// List returns the operations q selects, newest first. To page, pass the ID
// of the last operation returned as the next query's Before; an empty page
// is the end.
func (s *Store) List(q Query) ([]Operation, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	var out []Operation
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOps).Cursor()
		var k, v []byte
		if q.Before == 0 {
			k, v = c.Last()
		} else if k, _ = c.Seek(key(q.Before)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			op, err := decode(k, v)
			if err != nil {
				return err
			}
			if q.Kind != "" && op.Kind != q.Kind ||
				q.Origin != "" && string(op.Origin) != q.Origin ||
				q.State != "" && op.State != q.State ||
				q.Ref != "" && op.Ref != q.Ref {
				continue
			}
			if q.WithProgress {
				if err := loadProgress(tx, op); err != nil {
					return err
				}
			}
			out = append(out, *op)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot list operations: %w", err)
	}
	return out, nil
}

// prune drops the oldest operations until at most s.keep are left.
func (s *Store) prune(tx *bbolt.Tx) error {
	n := count(tx)
	if n <= uint64(s.keep) {
		return nil
	}
	progress, running := tx.Bucket(bucketProgress), tx.Bucket(bucketRunning)
	c := tx.Bucket(bucketOps).Cursor()
	for ; n > uint64(s.keep); n-- {
		k, _ := c.First()
		if k == nil {
			n = 0
			break
		}
		k = append([]byte(nil), k...)
		if err := c.Delete(); err != nil {
			return err
		}
		if err := progress.DeleteBucket(k); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
		if err := running.Delete(k); err != nil {
			return err
		}
	}
	return setCount(tx, n)
}

// appendProgress appends the encoded entry v to operation k's progress,
// keeping entry 1 and the newest MaxProgress-1.
func appendProgress(tx *bbolt.Tx, k, v []byte) error {
	pb, err := tx.Bucket(bucketProgress).CreateBucketIfNotExists(k)
	if err != nil {
		return err
	}
	seq, err := pb.NextSequence()
	if err != nil {
		return err
	}
	if err := pb.Put(key(seq), v); err != nil {
		return err
	}
	if seq > MaxProgress {
		return pb.Delete(key(seq - (MaxProgress - 1)))
	}
	return nil
}

// loadProgress fills op.Progress and op.ProgressDropped.
func loadProgress(tx *bbolt.Tx, op *Operation) error {
	pb := tx.Bucket(bucketProgress).Bucket(key(op.ID))
	if pb == nil {
		return nil
	}
	if seq := pb.Sequence(); seq > MaxProgress {
		op.ProgressDropped = int64(seq - MaxProgress)
	}
	return pb.ForEach(func(k, v []byte) error {
		var p Progress
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("cannot decode progress %d of operation %d: %w", binary.BigEndian.Uint64(k), op.ID, err)
		}
		op.Progress = append(op.Progress, p)
		return nil
	})
}

// now is the clock in UTC, without the monotonic reading that would not
// survive a round trip through the file.
func (s *Store) now() time.Time { return s.clock().Round(0).UTC() }

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// decode reads an operation record; a nil v gives a nil operation.
func decode(k, v []byte) (*Operation, error) {
	if v == nil {
		return nil, nil
	}
	op := new(Operation)
	if err := json.Unmarshal(v, op); err != nil {
		return nil, fmt.Errorf("cannot decode operation %d: %w", binary.BigEndian.Uint64(k), err)
	}
	return op, nil
}

// put writes an operation record, leaving its progress to its own bucket.
func put(ops *bbolt.Bucket, op *Operation) error {
	rec := *op
	rec.Progress, rec.ProgressDropped = nil, 0
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("cannot encode operation %d: %w", op.ID, err)
	}
	return ops.Put(key(op.ID), v)
}

func count(tx *bbolt.Tx) uint64 {
	v := tx.Bucket(bucketMeta).Get(keyCount)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func setCount(tx *bbolt.Tx, n uint64) error {
	return tx.Bucket(bucketMeta).Put(keyCount, key(n))
}
