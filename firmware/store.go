package firmware

import (
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/boxagent/boxagent/internal/atomicfile"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// Store errors.
var (
	ErrNotFound   = errors.New("artifact not found")
	ErrBadHash    = errors.New("not a sha-256 artifact id")
	ErrNoPrevious = errors.New("no previously staged artifact to roll back to")
	ErrReadBack   = errors.New("bytes read back differ from bytes received")
	ErrSize       = errors.New("package size differs from the announced size")
	// ErrStoreSpace: the package is larger than any stick's FAT32 can
	// hold, or than the store's free space.
	ErrStoreSpace = errors.New("package too large for the artifact store")
)

// storeReserve is the free space an import leaves in the store's
// filesystem, for the journal and the config beside it.
const storeReserve = 16 << 20

// Temporary file prefixes; whatever carries them is a crash leftover at
// OpenStore time and is removed.
const (
	tmpImport = ".import-"
	tmpAtomic = ".tmp-"
)

// Store is the content-addressed artifact store: each accepted package is
// kept as <dir>/<sha256> with its metadata in <dir>/<sha256>.json, so a
// rollback re-stages exactly the bytes staged before.
type Store struct {
	dir string
	now func() time.Time
	// free is the store filesystem's free space (statfs); tests replace it.
	free func() (int64, error)
	mu   sync.Mutex
	// counted is how many artifacts the last listing found, -1 once the
	// store changed since: Count answers from it (the agent is the
	// store's one writer, so nothing else changes it meanwhile).
	counted int
	damaged []Damaged // entries moved aside (store_damage.go)
	// onChange is OnChange's func.
	onChange func()
}

// OnChange has f called whenever what the store holds changes: an
// import, a removal, a staging recorded, an entry moved aside as damaged
// (which a listing may do). f is called with the store's lock held: it
// must only take note (the agent's status asks Count afterwards).
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = f
}

// changed forgets the count and tells OnChange's func; s.mu is held.
func (s *Store) changed() {
	s.counted = -1
	if s.onChange != nil {
		s.onChange()
	}
}

// Artifact is the metadata of one stored package.
type Artifact struct {
	SHA256  string         `json:"sha256"`
	Size    int64          `json:"size"`
	Method  Method         `json:"method"`
	Signer  *Signer        `json:"signer,omitempty"`
	Entries int            `json:"entries"`
	Added   time.Time      `json:"added"`
	Staged  []StagedRecord `json:"staged,omitempty"`
}

// StagedRecord says when an artifact was staged and onto which stick.
type StagedRecord struct {
	Time   time.Time `json:"time"`
	Serial string    `json:"serial,omitempty"` // USB device serial
	Label  string    `json:"label,omitempty"`  // filesystem label of the stick
}

// lastUsed is when the artifact was last added or staged.
func (a Artifact) lastUsed() time.Time {
	t := a.Added
	for _, s := range a.Staged {
		if s.Time.After(t) {
			t = s.Time
		}
	}
	return t
}

// OpenStore opens (creating it if needed) the store in dir and removes what
// a crash may have left: temporary files, metadata without its package and
// packages without their metadata.
func OpenStore(dir string) (*Store, error) {
	_, serr := os.Stat(dir)
	made := errors.Is(serr, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create artifact store: %w", err)
	}
	s := &Store{dir: dir, now: time.Now, counted: -1}
	s.free = func() (int64, error) {
		sp, err := statSpace(dir)
		return sp.Free, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read artifact store: %w", err)
	}
	have := make(map[string]bool, len(ents))
	for _, e := range ents {
		have[e.Name()] = true
	}
	removed := false
	for _, e := range ents {
		name := e.Name()
		sha, isMeta := strings.CutSuffix(name, ".json")
		orphan := (isMeta && validHash(sha) && !have[sha]) || (validHash(name) && !have[name+".json"])
		if strings.HasPrefix(name, tmpImport) || strings.HasPrefix(name, tmpAtomic) || orphan {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("cannot clean %s from artifact store: %w", name, err)
			}
			removed = true
		}
	}
	// Damaged metadata is moved aside now, so the first listing already
	// shows a whole store (a few small files: cheap before READY).
	s.damaged = readDamaged(dir)
	if _, err := s.list(); err != nil {
		return nil, err
	}
	// The agent opens the store before it says READY: sync only what a
	// clean-up changed (or a store just made).
	if removed || made {
		return s, syncStoreDir(dir)
	}
	return s, nil
}

// syncStoreDir is atomicfile.SyncDir; tests count its calls.
var syncStoreDir = atomicfile.SyncDir

// Dir is the directory of the store.
func (s *Store) Dir() string { return s.dir }

func validHash(sha string) bool {
	if len(sha) != 2*sha256.Size {
		return false
	}
	for _, c := range sha {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(sha string) (string, error) {
	if !validHash(sha) {
		return "", fmt.Errorf("%w: %q", ErrBadHash, sha)
	}
	return filepath.Join(s.dir, sha), nil
}

// Import copies a package from r into the store, verifying it with the
// policy. The bytes go to a temporary file, hashed on the way, fsynced,
// verified from disk, and only then renamed to their hash; a refused package
// leaves the store as it was. Importing a package already present returns
// the stored artifact.
func (s *Store) Import(ctx context.Context, r io.Reader, p Policy, opts ...Option) (Artifact, error) {
	o := newOptions(opts)
	f, err := os.CreateTemp(s.dir, tmpImport+"*")
	if err != nil {
		return Artifact{}, fmt.Errorf("cannot create temporary artifact: %w", err)
	}
	tmp := f.Name()
	keep := false
	defer func() {
		f.Close()
		if !keep {
			os.Remove(tmp)
		}
	}()
	limit, err := s.importLimit(o.size)
	if err != nil {
		return Artifact{}, err
	}
	h := kernelhash.New(crypto.SHA256)
	defer h.Close()
	if o.size >= 0 {
		r = io.LimitReader(r, o.size+1)
	}
	// An endless or oversized source stops one byte past the limit.
	size, err := copyCtx(ctx, io.MultiWriter(f, h), io.LimitReader(r, limit+1), o.size, o.progress)
	if err != nil {
		return Artifact{}, fmt.Errorf("cannot import package: %w", err)
	}
	if size > limit {
		return Artifact{}, fmt.Errorf("cannot import package: %w: more than %d bytes", ErrStoreSpace, limit)
	}
	if o.size >= 0 && size != o.size {
		return Artifact{}, fmt.Errorf("cannot import package: %w: received %d bytes, %d announced", ErrSize, size, o.size)
	}
	if err := f.Sync(); err != nil {
		return Artifact{}, fmt.Errorf("cannot sync temporary artifact: %w", err)
	}
	rep, err := Verify(ctx, f, size, p, opts...)
	if err != nil {
		return Artifact{}, err
	}
	sum := h.Sum(nil)
	if err := h.Err(); err != nil {
		return Artifact{}, fmt.Errorf("cannot import package: cannot hash it: %w", err)
	}
	if rep.SHA256 != hex.EncodeToString(sum) {
		return Artifact{}, fmt.Errorf("cannot import package: %w", ErrReadBack)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if a, err := s.get(rep.SHA256); err == nil {
		return a, nil
	}
	a := Artifact{SHA256: rep.SHA256, Size: rep.Size, Method: rep.Method, Signer: rep.Signer,
		Entries: rep.Entries, Added: s.now().UTC()}
	// Metadata first: a crash between the two leaves metadata without a
	// package, which OpenStore removes; never a package nobody can describe.
	if err := s.writeMeta(a); err != nil {
		return Artifact{}, err
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		return Artifact{}, fmt.Errorf("cannot import package: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, a.SHA256)); err != nil {
		os.Remove(filepath.Join(s.dir, a.SHA256+".json"))
		return Artifact{}, fmt.Errorf("cannot import package: %w", err)
	}
	keep = true
	if err := atomicfile.SyncDir(s.dir); err != nil {
		return Artifact{}, err
	}
	return a, nil
}

// importLimit is the most bytes an import may write: what a FAT32 stick
// can hold (MaxFAT32File), and no more than the store's free space less
// storeReserve. A package announced larger is refused before any byte.
func (s *Store) importLimit(announced int64) (int64, error) {
	limit := int64(MaxFAT32File)
	free, err := s.free()
	if err != nil {
		return 0, fmt.Errorf("cannot import package: %w", err)
	}
	if free -= storeReserve; free < limit {
		limit = max(free, 0)
	}
	if announced > limit {
		if announced > MaxFAT32File {
			return 0, fmt.Errorf("cannot import package: %w: %d bytes, FAT32 holds files up to 4 GiB - 1", ErrStoreSpace, announced)
		}
		return 0, fmt.Errorf("cannot import package: %w: %d bytes, the store has %d free", ErrStoreSpace, announced, limit)
	}
	return limit, nil
}

// copyCtx copies r to w, checking ctx and reporting progress ("copy"; the
// total is -1 when unknown).
func copyCtx(ctx context.Context, w io.Writer, r io.Reader, total int64, progress Progress) (int64, error) {
	buf := make([]byte, passBuf)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
			if progress != nil {
				progress("copy", n, total)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func (s *Store) writeMeta(a Artifact) error {
	s.changed()
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode artifact metadata: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.dir, a.SHA256+".json"), append(b, '\n'), 0o600)
}

// Get returns the metadata of one artifact.
func (s *Store) Get(sha string) (Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(sha)
}

func (s *Store) get(sha string) (Artifact, error) {
	p, err := s.path(sha)
	if err != nil {
		return Artifact{}, err
	}
	b, err := os.ReadFile(p + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("cannot read artifact metadata: %w", err)
	}
	var a Artifact
	if err := json.Unmarshal(b, &a); err != nil {
		return Artifact{}, fmt.Errorf("%w: %s.json: %v", ErrDamaged, sha, err)
	}
	return a, checkMeta(sha, a)
}

// Open opens the package bytes of an artifact for reading.
func (s *Store) Open(sha string) (*os.File, Artifact, error) {
	a, err := s.Get(sha)
	if err != nil {
		return nil, a, err
	}
	f, err := os.Open(filepath.Join(s.dir, sha))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, a, fmt.Errorf("%w: %s", ErrNotFound, sha)
	}
	if err != nil {
		return nil, a, fmt.Errorf("cannot open artifact: %w", err)
	}
	return f, a, nil
}

// List returns every artifact, most recently used first.
func (s *Store) List() ([]Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list()
}

// Count is how many artifacts the store holds. It reads the store only
// when it changed since it was last listed: status asks on every call.
func (s *Store) Count() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counted >= 0 {
		return s.counted, nil
	}
	arts, err := s.list()
	return len(arts), err
}

func (s *Store) list() ([]Artifact, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read artifact store: %w", err)
	}
	var out []Artifact
	for _, e := range ents {
		sha, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validHash(sha) {
			continue
		}
		a, err := s.get(sha)
		if errors.Is(err, ErrDamaged) {
			if qerr := s.quarantine(sha, err); qerr != nil {
				return nil, qerr
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b Artifact) int {
		return cmp.Or(b.lastUsed().Compare(a.lastUsed()), strings.Compare(a.SHA256, b.SHA256))
	})
	s.counted = len(out)
	return out, nil
}

// Remove deletes an artifact: metadata first, so a crash halfway leaves a
// package without metadata, which OpenStore removes.
func (s *Store) Remove(sha string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remove(sha)
}

func (s *Store) remove(sha string) error {
	s.changed()
	p, err := s.path(sha)
	if err != nil {
		return err
	}
	if err := os.Remove(p + ".json"); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, sha)
	} else if err != nil {
		return fmt.Errorf("cannot remove artifact: %w", err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove artifact: %w", err)
	}
	return atomicfile.SyncDir(s.dir)
}

// RecordStaged appends a staging record to an artifact's history. A zero
// Time is set to now.
func (s *Store) RecordStaged(sha string, rec StagedRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.get(sha)
	if err != nil {
		return err
	}
	if rec.Time.IsZero() {
		rec.Time = s.now()
	}
	rec.Time = rec.Time.UTC()
	a.Staged = append(a.Staged, rec)
	return s.writeMeta(a)
}

// stagedOrder returns the artifact hashes of every staging, newest first.
func stagedOrder(arts []Artifact) []string {
	type ev struct {
		t   time.Time
		sha string
	}
	var evs []ev
	for _, a := range arts {
		for _, r := range a.Staged {
			evs = append(evs, ev{r.Time, a.SHA256})
		}
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return b.t.Compare(a.t) })
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.sha
	}
	return out
}

// Current returns the artifact staged last.
func (s *Store) Current() (Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, _, err := s.currentPrevious()
	if err != nil {
		return Artifact{}, err
	}
	if cur == "" {
		return Artifact{}, fmt.Errorf("%w: nothing was staged yet", ErrNotFound)
	}
	return s.get(cur)
}

// Previous returns the artifact staged before the current one: the exact
// bytes a rollback must put back.
func (s *Store) Previous() (Artifact, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, prev, err := s.currentPrevious()
	if err != nil {
		return Artifact{}, err
	}
	if prev == "" {
		return Artifact{}, ErrNoPrevious
	}
	return s.get(prev)
}

func (s *Store) currentPrevious() (cur, prev string, err error) {
	arts, err := s.list()
	if err != nil {
		return "", "", err
	}
	for _, sha := range stagedOrder(arts) {
		switch {
		case cur == "":
			cur = sha
		case sha != cur:
			return cur, sha, nil
		}
	}
	return cur, "", nil
}

// Prune removes all but the keep most recently used artifacts. The current
// and previous staged artifacts (rollback targets) and those in protect are
// never removed. It returns the hashes it removed.
func (s *Store) Prune(keep int, protect ...string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arts, err := s.list()
	if err != nil {
		return nil, err
	}
	cur, prev, err := s.currentPrevious()
	if err != nil {
		return nil, err
	}
	protect = append(protect, cur, prev)
	var removed []string
	for i, a := range arts {
		if i < keep || slices.Contains(protect, a.SHA256) {
			continue
		}
		if err := s.remove(a.SHA256); err != nil {
			return removed, err
		}
		removed = append(removed, a.SHA256)
	}
	return removed, nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one. The temporary file carries tmpAtomic, which
// OpenStore removes as a crash leftover; a missing directory is an error
// (the store was not opened), not something to create.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, data, perm, atomicfile.Options{TempPrefix: tmpAtomic})
}
