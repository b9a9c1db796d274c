package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet/fleettest"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// testBackend is the agent's backend in these tests: what matters is the
// route table, the journal and the events, all real.
type testBackend struct {
	revision atomic.Value // string
	reloads  atomic.Int64
}

func (b *testBackend) Status(context.Context) apitype.Status {
	rev, _ := b.revision.Load().(string)
	return apitype.Status{Version: "test", Config: apitype.ConfigInfo{Revision: rev}, UptimeSeconds: float64(time.Now().UnixNano())}
}
func (b *testBackend) Doctor(context.Context) apitype.Doctor           { return apitype.Doctor{} }
func (b *testBackend) Board(context.Context) board.Detection           { return board.Detection{} }
func (b *testBackend) Boards(context.Context) ([]board.Profile, error) { return []board.Profile{}, nil }
func (b *testBackend) ReloadConfig(context.Context) (apitype.ReloadResult, error) {
	b.reloads.Add(1)
	return apitype.ReloadResult{}, nil
}
func (b *testBackend) Snapshot() journal.Snapshot {
	return journal.Snapshot{Revision: "sha256:test", Board: "test", Config: json.RawMessage(`{}`)}
}

// testBox is an agent with its link: a real local API, journal and event
// broker, and one extra route that counts its runs per command.
type testBox struct {
	id      string
	dir     string
	backend *testBackend
	srv     *localapi.Server
	store   *journal.Store
	events  *localapi.Broker
	opts    Options

	mu   sync.Mutex
	runs map[string]int // test.work runs by the command's "n"

	log *syncBuffer // the link's log, shown when a test fails
	// release ends the test.long operations.
	release chan struct{}

	link   *Link
	cancel context.CancelFunc
	done   chan struct{}
}

// testRoutes is the API's table with the tests' own calls.
var testRoutes = append(slices.Clip(localapi.Routes),
	localapi.Route{Method: "POST", Path: "/api/v1/test/work", Mutating: true},
	localapi.Route{Method: "POST", Path: "/api/v1/test/long", Mutating: true, Long: true})

// fleetRoutes are what the test boxes allow; the cancel route is not.
var fleetRoutes = []string{
	"GET /api/v1/status", "GET /api/v1/operations", "GET /api/v1/operations/{id}",
	"POST /api/v1/config/reload", "POST /api/v1/test/work", "POST /api/v1/test/long",
}

func newTestBox(t testing.TB, cfg config.Fleet, id Identity) *testBox {
	t.Helper()
	b := &testBox{id: id.ID, dir: t.TempDir(), backend: &testBackend{}, runs: map[string]int{}}
	var err error
	b.store, err = journal.Open(filepath.Join(b.dir, "journal.db"), journal.Options{Keep: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	b.events = localapi.NewBroker(256)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.log = &syncBuffer{}
	linkLog := slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.srv = localapi.New(localapi.Options{Backend: b.backend, Journal: b.store, Events: b.events, Logger: log, Routes: testRoutes})
	b.srv.Handle("POST /api/v1/test/work", func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			N string `json:"n"`
		}
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		return b.srv.Operate(w, r, localapi.Spec{Kind: "test.work", Request: req}, func(context.Context, localapi.ProgressFunc) (any, error) {
			b.mu.Lock()
			b.runs[req.N]++
			b.mu.Unlock()
			return map[string]string{"ran": req.N}, nil
		})
	})
	b.release = make(chan struct{})
	b.srv.Handle("POST /api/v1/test/long", func(w http.ResponseWriter, r *http.Request) error {
		return b.srv.Operate(w, r, localapi.Spec{Kind: "test.long"}, func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			select {
			case <-b.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			b.mu.Lock()
			b.runs["long"]++
			b.mu.Unlock()
			return nil, nil
		})
	})
	b.opts = Options{
		Config: cfg, Identity: id, Version: "test",
		API: b.srv.InProcess(journal.OriginFleet), Routes: testRoutes, Journal: b.store, Events: b.events,
		Snapshot: b.backend.Snapshot, Cursor: Cursor{Path: filepath.Join(b.dir, CursorFile)},
		Logger: linkLog,
	}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

func (b *testBox) start(t testing.TB) {
	t.Helper()
	l, err := New(b.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.link, b.cancel, b.done = l, cancel, make(chan struct{})
	go func() { defer close(b.done); l.Run(ctx) }()
}

func (b *testBox) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel = nil
	}
}

// record journals one operation of the agent's own (origin auto).
func (b *testBox) record(t testing.TB, kind string) uint64 {
	t.Helper()
	op, err := b.srv.Run(localapi.Spec{Kind: kind}, func(context.Context, localapi.ProgressFunc) (any, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	return op.ID
}

func (b *testBox) runsOf(n string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[n]
}

// operatorKey makes an operator key pair; the public half goes in [fleet].
func operatorKey(t testing.TB) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, base64.StdEncoding.EncodeToString(pub)
}

// waitFor polls a test condition (the test's, not the link's).
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	fleettest.WaitFor(t, within, what, cond)
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
