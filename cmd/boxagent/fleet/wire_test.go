package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
)

func TestSignOpen(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	c := Command{ID: "c1", Target: "box", Method: "POST", Path: "/api/v1/fw/add", Body: []byte(`{"url":"http://x/p.zip"}`), Expires: time.Now().Add(time.Minute).UTC()}
	good, err := Sign(c, priv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  []byte
		keys []ed25519.PublicKey
		want error
	}{
		{"signed by an operator key", good, []ed25519.PublicKey{otherPub, pub}, nil},
		{"signed by a key the box lacks", good, []ed25519.PublicKey{otherPub}, ErrBadSignature},
		{"signed by another operator", must(Sign(c, otherPriv)), []ed25519.PublicKey{pub}, ErrBadSignature},
		{"command changed after signing", bytes.Replace(good, []byte(`"box"`), []byte(`"bob"`), 1), []ed25519.PublicKey{pub}, ErrBadSignature},
		{"not JSON", []byte("hello"), []ed25519.PublicKey{pub}, ErrMalformed},
		{"no signature", []byte(`{"command":{"id":"c1"},"key":"","sig":""}`), []ed25519.PublicKey{pub}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.msg, tt.keys)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if err == nil && (got.ID != c.ID || got.Path != c.Path || string(got.Body) != string(c.Body)) {
				t.Errorf("opened %+v", got)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestAllowedRoutes(t *testing.T) {
	const pub = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 zero bytes: length is all New checks
	l, err := New(Options{Config: config.Fleet{Routes: []string{"GET /api/v1/status", "GET /api/v1/operations", "GET /api/v1/operations/{id}", "POST /api/v1/fw/add", "GET /api/v1/bt/devices/{addr}"}, OperatorKeys: []string{pub}}, Identity: Identity{ID: "box"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/v1/status", true},
		{"GET", "/api/v1/operations?limit=5&before=9", true},
		{"GET", "/api/v1/operations/17", true},
		{"HEAD", "/api/v1/status", true}, // net/http's GET pattern; the handler answers as for GET
		{"POST", "/api/v1/fw/add", true},
		{"POST", "/api/v1/fw/stage", false},
		{"POST", "/api/v1/status", false},
		{"POST", "/api/v1/operations/17/cancel", false},
		{"POST", "/api/v1/fw/../operations/1/cancel", false},
		{"GET", "/api/v1//status", false},
		{"GET", "/etc/passwd", false},
		{"GET", "http://evil/api/v1/status", false},
		{"GET", "/api/v1/bt/devices/00:1B:66:AA:BB:CC", true}, // the table's {address}, configured as {addr}
		{"GET", "/api/v1/bt/devices", false},
	}
	for _, tt := range tests {
		if got := l.allowed(tt.method, tt.path); got != tt.want {
			t.Errorf("allowed(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

// TestAllowedRoutesRefused: a configured route must name a call of the
// API's table served in process; one that names none would allow nothing
// (or, as a prefix, a whole subtree), and the link does not start.
func TestAllowedRoutesRefused(t *testing.T) {
	const pub = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	for _, r := range []string{"POST /api/v1/nothing", "GET /api/v1/bt/", "POST /api/v1/login", "DELETE /api/v1/status"} {
		_, err := New(Options{Config: config.Fleet{Routes: []string{"GET /api/v1/status", r}, OperatorKeys: []string{pub}}, Identity: Identity{ID: "box"}})
		if err == nil || !strings.Contains(err.Error(), "routes[1]") {
			t.Errorf("%s: %v", r, err)
		}
	}
}

func TestCursor(t *testing.T) {
	c := Cursor{Path: filepath.Join(t.TempDir(), "state", CursorFile)}
	if n, err := c.Load(); n != 0 || err != nil {
		t.Fatalf("a missing cursor: %d %v", n, err)
	}
	if err := c.Store(42); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Load(); n != 42 || err != nil {
		t.Errorf("Load = %d %v", n, err)
	}
}

func TestRefusalBucket(t *testing.T) {
	var b bucket
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	n := 0
	for range 100 {
		if b.take(now) {
			n++
		}
	}
	if n != refusalBurst {
		t.Errorf("a burst journalled %d refusals, want %d", n, refusalBurst)
	}
	if b.take(now.Add(refusalEvery/2)) || !b.take(now.Add(refusalEvery)) {
		t.Errorf("the bucket does not refill at one per %s", refusalEvery)
	}
}

// TestCursorAhead: the records acknowledged beyond the cursor (an
// operation still running holds it back) are kept with it, so a restart
// does not send them again (TestMosquitto saw "record 10 arrived 2
// times" when one was running at the stop); the old one-line file reads.
func TestCursorAhead(t *testing.T) {
	c := Cursor{Path: filepath.Join(t.TempDir(), "state", CursorFile)}
	if id, ahead, err := c.LoadAhead(); err != nil || id != 0 || len(ahead) != 0 {
		t.Fatalf("missing file: %d %v %v", id, ahead, err)
	}
	if err := c.StoreAhead(7, map[uint64]bool{9: true, 12: true}); err != nil {
		t.Fatal(err)
	}
	id, ahead, err := c.LoadAhead()
	if err != nil || id != 7 || !ahead[9] || !ahead[12] || len(ahead) != 2 {
		t.Fatalf("round trip: %d %v %v", id, ahead, err)
	}
	if n, err := c.Load(); err != nil || n != 7 {
		t.Fatalf("Load = %d, %v", n, err)
	}
	if err := os.WriteFile(c.Path, []byte("41\n"), 0o600); err != nil { // an older agent's
		t.Fatal(err)
	}
	if id, ahead, err := c.LoadAhead(); err != nil || id != 41 || len(ahead) != 0 {
		t.Fatalf("one-line file: %d %v %v", id, ahead, err)
	}
	many := map[uint64]bool{}
	for i := uint64(1); i <= maxAhead+10; i++ {
		many[100+i] = true
	}
	if err := c.StoreAhead(100, many); err != nil {
		t.Fatal(err)
	}
	if _, ahead, _ := c.LoadAhead(); len(ahead) != maxAhead || ahead[101] || !ahead[100+maxAhead+10] {
		t.Fatalf("bounded: %d kept, oldest %v, newest %v", len(ahead), ahead[101], ahead[100+maxAhead+10])
	}
	if err := os.WriteFile(c.Path, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.LoadAhead(); err == nil {
		t.Fatal("a damaged cursor read without an error")
	}
}
