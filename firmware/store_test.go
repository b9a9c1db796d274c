package firmware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pkg returns a distinct small package.
func pkg(t *testing.T, tag string) []byte {
	return buildZip(t, updateEntries(entry{"tag.txt", []byte(tag)}), "")
}

func TestStoreImport(t *testing.T) {
	needTool(t, "openssl")
	k := key(t, "rsa2048")
	signed := signWholeFile(t, pkg(t, "v1"), k, "sha256", true)
	policy := Policy{Method: MethodSignApk, Certs: []*x509.Certificate{k.cert}, RequiredEntries: []string{AndroidUpdateBinary}}
	dir := filepath.Join(t.TempDir(), "artifacts")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	a, err := s.Import(context.Background(), bytes.NewReader(signed), policy, WithSize(int64(len(signed))), WithProgress(func(phase string, done, total int64) {
		if len(phases) == 0 || phases[len(phases)-1] != phase {
			phases = append(phases, phase)
		}
		if total != int64(len(signed)) || done > total {
			t.Errorf("progress(%s, %d, %d)", phase, done, total)
		}
	}))
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !slices.Equal(phases, []string{"copy", "verify"}) {
		t.Errorf("progress phases = %v", phases)
	}
	if a.SHA256 != shaHex(signed) || a.Size != int64(len(signed)) || a.Signer == nil || a.Signer.Subject != "boxagent test rsa2048" || a.Added.IsZero() {
		t.Errorf("artifact = %+v", a)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{a.SHA256, a.SHA256 + ".json"}) {
		t.Errorf("store holds %v", got)
	}
	f, got, err := s.Open(a.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(b, signed) || got.SHA256 != a.SHA256 {
		t.Errorf("Open returned other bytes or metadata %+v", got)
	}
	var side Artifact
	raw, _ := os.ReadFile(filepath.Join(dir, a.SHA256+".json"))
	if err := json.Unmarshal(raw, &side); err != nil || side.SHA256 != a.SHA256 || side.Signer.Fingerprint != a.Signer.Fingerprint {
		t.Errorf("sidecar %s: %v", raw, err)
	}

	// Importing the same bytes again is a no-op that returns the artifact.
	again, err := s.Import(context.Background(), bytes.NewReader(signed), policy)
	if err != nil || !again.Added.Equal(a.Added) {
		t.Errorf("re-import = %+v, %v", again, err)
	}

	before := dirNames(t, dir)
	refused := []struct {
		name    string
		data    []byte
		ctx     context.Context
		wantErr error
		opts    []Option
	}{
		{"tampered", flip(signed, 100), context.Background(), ErrSignature, nil},
		{"unsigned", pkg(t, "v2"), context.Background(), ErrUnsigned, nil},
		{"truncated", signed[:len(signed)/2], context.Background(), ErrFooter, nil},
		{"cancelled", signed, cancelled(), context.Canceled, nil},
		{"shorter than announced", signed, context.Background(), ErrSize, []Option{WithSize(int64(len(signed)) + 1)}},
		{"longer than announced", signed, context.Background(), ErrSize, []Option{WithSize(int64(len(signed)) - 1)}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Import(tt.ctx, bytes.NewReader(tt.data), policy, tt.opts...); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Import = %v, want %v", err, tt.wantErr)
			}
			if after := dirNames(t, dir); !slices.Equal(after, before) {
				t.Fatalf("store changed: %v -> %v", before, after)
			}
		})
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestStoreCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Import(context.Background(), bytes.NewReader(pkg(t, "keep")), Policy{Method: MethodNone})
	if err != nil {
		t.Fatal(err)
	}
	orphanMeta := shaHex([]byte("meta without package"))
	orphanBlob := shaHex([]byte("package without meta"))
	for name, data := range map[string]string{
		tmpImport + "123456":               "half a package",
		tmpAtomic + a.SHA256 + ".json-999": "{half",
		orphanMeta + ".json":               "{}",
		orphanBlob:                         "bytes",
		"README":                           "not ours, left alone",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"README", a.SHA256, a.SHA256 + ".json"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after reopen: %v, want %v", got, want)
	}
}

func TestStoreRollbackAndPrune(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	var arts []Artifact
	for _, tag := range []string{"A", "B", "C", "D"} {
		a, err := s.Import(context.Background(), bytes.NewReader(pkg(t, tag)), Policy{Method: MethodNone})
		if err != nil {
			t.Fatal(err)
		}
		arts = append(arts, a)
	}
	A, B, C, D := arts[0].SHA256, arts[1].SHA256, arts[2].SHA256, arts[3].SHA256

	if _, err := s.Previous(); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("Previous with nothing staged = %v", err)
	}
	stage := func(sha string) {
		t.Helper()
		if err := s.RecordStaged(sha, StagedRecord{Serial: "USB123", Label: "UPDATES"}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(cur, prev string) {
		t.Helper()
		c, err := s.Current()
		if err != nil || c.SHA256 != cur {
			t.Fatalf("Current = %s, %v; want %s", c.SHA256, err, cur)
		}
		p, err := s.Previous()
		if prev == "" {
			if !errors.Is(err, ErrNoPrevious) {
				t.Fatalf("Previous = %s, %v; want ErrNoPrevious", p.SHA256, err)
			}
			return
		}
		if err != nil || p.SHA256 != prev {
			t.Fatalf("Previous = %s, %v; want %s", p.SHA256, err, prev)
		}
	}
	stage(A)
	expect(A, "")
	stage(A)
	expect(A, "")
	stage(B)
	expect(B, A)
	stage(A) // the rollback itself
	expect(A, B)

	got, _ := s.Get(A)
	if len(got.Staged) != 3 || got.Staged[0].Serial != "USB123" || got.Staged[0].Label != "UPDATES" {
		t.Errorf("history of A = %+v", got.Staged)
	}
	for _, name := range dirNames(t, s.Dir()) {
		if name[0] == '.' {
			t.Errorf("temporary file %s left behind", name)
		}
	}

	// Most recently used first: A (staged last), B, D (added last), C.
	removed, err := s.Prune(0, D)
	if err != nil || !slices.Equal(removed, []string{C}) {
		t.Fatalf("Prune(0, D) = %v, %v; want [C]", removed, err)
	}
	list, _ := s.List()
	if len(list) != 3 || list[0].SHA256 != A || list[1].SHA256 != B || list[2].SHA256 != D {
		t.Errorf("List after prune = %v", list)
	}
	if err := s.Remove(D); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(D); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get removed = %v", err)
	}
	if err := s.Remove(D); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice = %v", err)
	}
	for _, bad := range []string{"../../etc/passwd", "ABC", A[:63] + "G"} {
		if _, err := s.Get(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("Get(%q) = %v, want ErrBadHash", bad, err)
		}
	}
	if err := s.RecordStaged(C, StagedRecord{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordStaged of a pruned artifact = %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "meta.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := writeFileAtomic(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if string(b) != content || fi.Mode().Perm() != 0o640 {
			t.Errorf("file = %q mode %v", b, fi.Mode())
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"meta.json"}) {
		t.Errorf("dir = %v", got)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		if err := writeFileAtomic(p, []byte("third"), 0o600); err == nil {
			t.Error("write into a read-only directory succeeded")
		}
		if b, _ := os.ReadFile(p); string(b) != "second, longer" {
			t.Errorf("failed write changed the file to %q", b)
		}
	}
}

// TestOpenStoreSyncsOnlyChanges: the agent opens the store before READY;
// a warm start with nothing to clean syncs nothing.
func TestOpenStoreSyncsOnlyChanges(t *testing.T) {
	syncs := 0
	orig := syncStoreDir
	syncStoreDir = func(dir string) error { syncs++; return orig(dir) }
	defer func() { syncStoreDir = orig }()
	dir := filepath.Join(t.TempDir(), "artifacts")
	for _, tt := range []struct {
		name  string
		setup func()
		want  int
	}{
		{"made", func() {}, 1},
		{"warm", func() {}, 0},
		{"a temporary file left", func() { os.WriteFile(filepath.Join(dir, tmpImport+"x"), nil, 0o600) }, 1},
		{"warm again", func() {}, 0},
	} {
		syncs = 0
		tt.setup()
		if _, err := OpenStore(dir); err != nil {
			t.Fatal(err)
		}
		if syncs != tt.want {
			t.Errorf("%s: %d syncs, want %d", tt.name, syncs, tt.want)
		}
	}
}

// TestStoreCount: the count status shows follows imports and removals,
// and is answered without reading the store while it has not changed
// (status asked List on every call: 275 µs a call with 5 artifacts).
func TestStoreCount(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	count := func(want int) {
		t.Helper()
		if n, err := s.Count(); err != nil || n != want {
			t.Fatalf("Count = %d, %v; want %d", n, err, want)
		}
	}
	count(0)
	a, err := s.Import(context.Background(), bytes.NewReader(pkg(t, "A")), Policy{Method: MethodNone})
	if err != nil {
		t.Fatal(err)
	}
	count(1)
	// An entry the agent did not write (it is the store's one writer) is
	// not seen until the store changes: Count did not read the folder.
	meta, err := os.ReadFile(filepath.Join(dir, a.SHA256+".json"))
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("b", 64)
	if err := os.WriteFile(filepath.Join(dir, other+".json"), bytes.Replace(meta, []byte(a.SHA256), []byte(other), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	count(1)
	if err := s.Remove(a.SHA256); err != nil {
		t.Fatal(err)
	}
	count(1) // read again after the removal: the other entry
	if err := s.Remove(other); err != nil {
		t.Fatal(err)
	}
	count(0)
}

// TestStoreDamagedEntry: one damaged metadata file (bit-flipped, or
// describing another package) took the whole store down: List failed, so
// fw list, status and staging of every other package did. It is moved
// aside, said by Damaged (also after a restart), and the rest works.
func TestStoreDamagedEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(meta []byte) []byte
	}{
		{"bit flip", func(m []byte) []byte { m = bytes.Clone(m); m[0] ^= 0x40; return m }},
		{"truncated", func(m []byte) []byte { return m[:len(m)/2] }},
		{"another package's", func(m []byte) []byte {
			var a Artifact
			json.Unmarshal(m, &a)
			a.SHA256 = strings.Repeat("c", 64)
			b, _ := json.Marshal(a)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := OpenStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			var shas []string
			for _, tag := range []string{"A", "B"} {
				a, err := s.Import(context.Background(), bytes.NewReader(pkg(t, tag)), Policy{Method: MethodNone})
				if err != nil {
					t.Fatal(err)
				}
				shas = append(shas, a.SHA256)
			}
			meta := filepath.Join(dir, shas[0]+".json")
			b, err := os.ReadFile(meta)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(meta, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			// Found at the next start, while the store opens.
			s, err = OpenStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			arts, err := s.List()
			if err != nil || len(arts) != 1 || arts[0].SHA256 != shas[1] {
				t.Fatalf("List with one damaged entry = %v, %v; want the other one", arts, err)
			}
			d := s.Damaged()
			if len(d) != 1 || d[0].SHA256 != shas[0] || !strings.Contains(d[0].Reason, "damaged artifact metadata") {
				t.Fatalf("Damaged = %+v", d)
			}
			for _, p := range []string{meta, filepath.Join(dir, shas[0])} {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s is still in the store: %v", p, err)
				}
			}
			if f, _, err := s.Open(shas[1]); err != nil {
				t.Errorf("the other package: %v", err)
			} else {
				f.Close()
			}
			// Another restart: still said (from the damaged folder).
			s2, err := OpenStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := s2.Damaged(); len(d) != 1 || d[0].SHA256 != shas[0] {
				t.Errorf("Damaged after a restart = %+v", d)
			}
			if n, err := s2.Count(); err != nil || n != 1 {
				t.Errorf("Count after a restart = %d, %v", n, err)
			}
		})
	}
}
