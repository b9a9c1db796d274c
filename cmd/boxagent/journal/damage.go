package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// Damage is what Open found wrong with the journal file, and where it put
// the file before starting a new one.
type Damage struct {
	MovedTo string    `json:"moved_to"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
}

// corruptSuffix marks a damaged journal moved aside: journal.db.corrupt-<time>.
const corruptSuffix = ".corrupt-"

// damagedError is a journal file whose content cannot be trusted: bbolt
// refused it, panicked on it, or its check or records failed.
type damagedError struct{ reason string }

func (e *damagedError) Error() string { return "damaged: " + e.reason }

func damaged(format string, args ...any) error {
	return &damagedError{reason: fmt.Sprintf(format, args...)}
}

// Damage says whether Open found the file damaged and moved it aside; nil
// when the journal opened whole.
func (s *Store) Damage() *Damage { return s.damage }

// Quarantined lists the damaged journals Open moved aside next to path,
// oldest first. They stay until someone has looked at them and removed them.
func Quarantined(path string) []string {
	found, _ := filepath.Glob(path + corruptSuffix + "*")
	sort.Strings(found)
	return found
}

// openOrMoveAside opens path; a damaged file is renamed to
// path.corrupt-<time> and a new journal started in its place.
func openOrMoveAside(path string, opts Options, now time.Time) (*Store, error) {
	s, err := openChecked(path, opts)
	var de *damagedError
	if !errors.As(err, &de) {
		return s, err
	}
	aside := path + corruptSuffix + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, aside); err != nil {
		return nil, fmt.Errorf("cannot move the damaged journal %s aside (%s): %w", path, de.reason, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("cannot move the damaged journal %s aside: %w", path, err)
	}
	s, err = openChecked(path, opts)
	if err != nil {
		return nil, err
	}
	s.damage = &Damage{MovedTo: aside, Reason: de.reason, Time: now.UTC()}
	return s, nil
}

// guarded runs f, turning a panic or a memory fault inside bbolt (which
// trusts its file: a flipped bit in a page header or a page past the end of
// a truncated file) into a damagedError.
func guarded(what string, f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = damaged("%s: %v", what, r)
		}
	}()
	return f()
}

// openBolt opens the file, telling a damaged one from a locked or
// unreadable one.
func openBolt(path string, noFollow bool) (*bbolt.DB, error) {
	var db *bbolt.DB
	err := guarded("open", func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout, OpenFile: openFile(noFollow)})
		return err
	})
	var de *damagedError
	var pe *os.PathError
	switch {
	case err == nil, errors.As(err, &de):
		return db, err
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("cannot open journal %s: %w", path, ErrLocked)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
		return nil, damaged("%v", err)
	case errors.As(err, &pe):
		return nil, fmt.Errorf("cannot open journal %s: %w", path, err)
	}
	return nil, fmt.Errorf("cannot open journal %s: %w", path, err)
}

// openFile opens the journal file for bbolt and restricts it with fchmod:
// an older file may have been created with a looser mode, and it holds
// settings fingerprints and requests. With noFollow, a symlink as the last
// step is refused (ELOOP), not followed.
func openFile(noFollow bool) func(string, int, os.FileMode) (*os.File, error) {
	return func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if noFollow {
			flag |= syscall.O_NOFOLLOW
		}
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot restrict journal %s: %w", name, err)
		}
		return f, nil
	}
}

// checkFile reads every page and record of the journal before anything is
// written to it: bbolt checks only its meta pages, so a damaged branch or
// leaf page would otherwise panic later, in the middle of a request.
func checkFile(path string, db *bbolt.DB) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot inspect journal %s: %w", path, err)
	}
	return guarded("check", func() error {
		return db.View(func(tx *bbolt.Tx) error {
			if tx.Size() > fi.Size() {
				return damaged("truncated: %d bytes, its pages reach %d", fi.Size(), tx.Size())
			}
			// Walk every record here first, in this goroutine, where a
			// fault is recovered; tx.Check runs in a goroutine of its own.
			if err := walk(tx); err != nil {
				return err
			}
			var problems []string
			for err := range tx.Check() {
				problems = append(problems, err.Error())
			}
			if len(problems) > 0 {
				return damaged("%d check errors, the first: %s", len(problems), problems[0])
			}
			return nil
		})
	})
}

// walk visits every key of every bucket, which reads every branch and leaf
// page, and decodes every operation and progress entry.
func walk(tx *bbolt.Tx) error {
	return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		return walkBucket(b, string(name), 0)
	})
}

func walkBucket(b *bbolt.Bucket, name string, depth int) error {
	if depth > 2 {
		return damaged("bucket %s nested %d deep", name, depth)
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			child := b.Bucket(k)
			if child == nil {
				return damaged("bucket %s: key %x has no value", name, k)
			}
			if err := walkBucket(child, name+"/"+fmt.Sprintf("%x", k), depth+1); err != nil {
				return err
			}
			continue
		}
		switch {
		case name == string(bucketOps):
			if _, err := decode(k, v); err != nil {
				return damaged("%v", err)
			}
		case depth == 1 && strings.HasPrefix(name, string(bucketProgress)+"/"):
			var p Progress
			if err := json.Unmarshal(v, &p); err != nil {
				return damaged("cannot decode progress in %s: %v", name, err)
			}
		}
	}
	return nil
}
