package journal

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var filled struct {
	sync.Once
	data []byte
	err  error
}

// filledJournal writes a journal of a few hundred finished operations with
// progress (built once per test binary: every commit is an fsync) and
// returns a fresh copy's path and bytes.
func filledJournal(t *testing.T) (string, []byte) {
	t.Helper()
	filled.Do(func() {
		path := filepath.Join(t.TempDir(), "filled.db")
		s, err := Open(path, Options{Now: newClock().Now})
		if err != nil {
			filled.err = err
			return
		}
		for i := 0; i < 300 && err == nil; i++ {
			var op Operation
			op, err = s.Begin(Operation{Kind: "fw.stage", Origin: OriginCLI, Snapshot: testSnapshot})
			for j := 0; j < 5 && err == nil; j++ {
				err = s.AddProgress(op.ID, Progress{Message: "copying", Done: int64(j), Total: 5})
			}
			if err == nil {
				_, err = s.Finish(op.ID, nil, nil, "")
			}
		}
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			filled.data, err = os.ReadFile(path)
		}
		filled.err = err
	})
	if filled.err != nil {
		t.Fatal(filled.err)
	}
	path := dbPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	data := append([]byte(nil), filled.data...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// rootPage finds the root bucket's page from the newer of the two meta
// pages (bbolt's layout: a 16-byte page header, then magic, version,
// page size, flags, the root bucket's page id …, the txid at 64).
func rootPage(data []byte) (pageSize int, root uint64) {
	le := binary.LittleEndian
	pageSize = int(le.Uint32(data[24:]))
	meta := data[:pageSize]
	if le.Uint64(data[pageSize+64:]) > le.Uint64(data[64:]) {
		meta = data[pageSize : 2*pageSize]
	}
	return pageSize, le.Uint64(meta[32:])
}

// TestOpenDamaged: a power cut on cheap flash can leave the journal
// truncated or with flipped bits, and bbolt panics on such a file (the old
// Open crashed the agent: exit 2, a crash loop under systemd). Open moves
// the file aside and starts a new journal, and says so.
func TestOpenDamaged(t *testing.T) {
	tests := []struct {
		name   string
		damage func(data []byte) []byte
	}{
		{"truncated", func(data []byte) []byte { return data[:len(data)/2] }},
		{"truncated to one page", func(data []byte) []byte { return data[:4096] }},
		{"bit flipped in the root page", func(data []byte) []byte {
			pageSize, root := rootPage(data)
			data[int(root)*pageSize+8] ^= 0x40 // the page's flags
			return data
		}},
		{"bit flipped in the root page's count", func(data []byte) []byte {
			pageSize, root := rootPage(data)
			data[int(root)*pageSize+11] ^= 0x40
			return data
		}},
		{"zeros", func(data []byte) []byte { return make([]byte, 8192) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, data := filledJournal(t)
			if err := os.WriteFile(path, tt.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			s := open(t, path, Options{})
			d := s.Damage()
			if d == nil {
				t.Fatal("a damaged journal opened without a Damage")
			}
			if !strings.HasPrefix(filepath.Base(d.MovedTo), "journal.db.corrupt-") || d.Reason == "" {
				t.Errorf("Damage = %+v, want it moved to journal.db.corrupt-<time> with a reason", d)
			}
			if _, err := os.Stat(d.MovedTo); err != nil {
				t.Errorf("the damaged file is not kept: %v", err)
			}
			if got := Quarantined(path); len(got) != 1 || got[0] != d.MovedTo {
				t.Errorf("Quarantined = %q, want [%s]", got, d.MovedTo)
			}
			// The new journal works.
			op := begin(t, s, "config.reload", OriginCLI)
			if _, err := s.Finish(op.ID, nil, nil, ""); err != nil {
				t.Fatal(err)
			}
			ops, err := s.List(Query{})
			if err != nil || len(ops) != 1 {
				t.Fatalf("List on the new journal = %d operations, %v; want 1", len(ops), err)
			}
			// Opened again, it is whole.
			s.Close()
			s2 := open(t, path, Options{})
			if s2.Damage() != nil {
				t.Errorf("the new journal reads as damaged: %+v", s2.Damage())
			}
		})
	}
}

// TestOpenDamagedRecord: a record that is no longer JSON (a flipped bit
// in a value bbolt does not check) would fail every history listing.
func TestOpenDamagedRecord(t *testing.T) {
	path, data := filledJournal(t)
	i := strings.Index(string(data), `"kind":"fw.stage"`)
	if i < 0 {
		t.Fatal("no record found in the file")
	}
	data[i] = 0
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, Options{})
	if s.Damage() == nil {
		t.Fatal("a journal with an undecodable record opened without a Damage")
	}
	if _, err := s.List(Query{Limit: 1000}); err != nil {
		t.Errorf("List after the move: %v", err)
	}
}

// TestOpenNotDamaged: errors that say nothing about the file's content
// (locked, unreadable) leave it where it is.
func TestOpenNotDamaged(t *testing.T) {
	path, _ := filledJournal(t)
	s := open(t, path, Options{})
	if s.Damage() != nil {
		t.Fatalf("a whole journal reads as damaged: %+v", s.Damage())
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	if got := Quarantined(path); len(got) != 0 {
		t.Errorf("a locked journal was moved aside: %q", got)
	}
}
