package firmware

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// ErrDamaged: an artifact's metadata cannot be read as its own (not JSON,
// or naming another package). The entry is moved aside, not used.
var ErrDamaged = errors.New("damaged artifact metadata")

// damagedDir is the folder of the store where damaged entries go, kept
// for a bug report: nothing reads them again.
const damagedDir = "damaged"

// checkMeta refuses metadata that is not the named package's own.
func checkMeta(sha string, a Artifact) error {
	if a.SHA256 != sha {
		return fmt.Errorf("%w: %s.json describes %q", ErrDamaged, sha, a.SHA256)
	}
	return nil
}

// quarantine moves a damaged entry (its metadata and package) to the
// damaged folder, so that one bad file does not take the whole store
// down: the other packages stay listed and stageable. s.mu is held.
func (s *Store) quarantine(sha string, why error) error {
	qdir := filepath.Join(s.dir, damagedDir)
	if err := os.MkdirAll(qdir, 0o700); err != nil {
		return fmt.Errorf("cannot move a damaged artifact aside: %w", err)
	}
	stamp := s.now().UTC().Format("20060102T150405Z")
	moved := ""
	for _, name := range []string{sha + ".json", sha} {
		to := filepath.Join(qdir, name+"."+stamp)
		if err := os.Rename(filepath.Join(s.dir, name), to); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot move a damaged artifact aside: %w", err)
		}
		if moved == "" {
			moved = to
		}
	}
	s.changed()
	s.damaged = append(s.damaged, Damaged{SHA256: sha, Reason: why.Error(), MovedTo: moved})
	if err := atomicfile.SyncDir(qdir); err != nil {
		return err
	}
	return atomicfile.SyncDir(s.dir)
}

// Damaged is an entry of the store moved aside as damaged.
type Damaged struct {
	SHA256  string `json:"sha256"`
	Reason  string `json:"reason,omitempty"` // "" for one found by an earlier run
	MovedTo string `json:"moved_to"`
}

// Damaged lists the entries moved aside, by this run (with the reason)
// and earlier ones (found in the damaged folder when the store opened).
func (s *Store) Damaged() []Damaged {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.damaged)
}

// readDamaged lists what earlier runs moved aside.
func readDamaged(dir string) []Damaged {
	ents, _ := os.ReadDir(filepath.Join(dir, damagedDir))
	var out []Damaged
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), filepath.Ext(e.Name()))
		if sha, meta := strings.CutSuffix(name, ".json"); ok && meta && validHash(sha) {
			out = append(out, Damaged{SHA256: sha, MovedTo: filepath.Join(dir, damagedDir, e.Name())})
		}
	}
	return out
}
