package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// simBox is one simulated box: a real link, a fake backend.
type simBox struct {
	id      string
	journal *memJournal
	events  *localapi.Broker
	link    *fleet.Link
	cancel  context.CancelFunc
	done    chan struct{}
	changed chan struct{} // the link's Info changed
	dials   atomic.Int32

	mu      sync.Mutex
	counted map[string]int
}

// simRoutes is the API's table with the simulated box's one call of its
// own.
var simRoutes = append(slices.Clip(localapi.Routes), localapi.Route{Method: "POST", Path: "/api/v1/test/work", Mutating: true})

// newSimBox makes a box whose link wakes anyChanged too when it connects
// or loses its broker, and counts in redials the dials after its first
// (paho's retries and reconnects, one per broker tried).
func newSimBox(c config.Fleet, id fleet.Identity, anyChanged chan struct{}, redials *atomic.Int64, log *slog.Logger) (*simBox, error) {
	b := &simBox{id: id.ID, journal: &memJournal{}, events: localapi.NewBroker(16), counted: map[string]int{}, changed: make(chan struct{}, 1)}
	// paho's own dialer, with a count.
	dialer := &net.Dialer{Timeout: 30 * time.Second, Control: func(string, string, syscall.RawConn) error {
		if b.dials.Add(1) > 1 {
			redials.Add(1)
		}
		return nil
	}}
	l, err := fleet.New(fleet.Options{Config: c, Identity: id, Version: "sim", API: b, Routes: simRoutes, Journal: b.journal, Events: b.events,
		Dialer: dialer, Changed: func() { wake(b.changed); wake(anyChanged) }, Logger: log})
	b.link = l
	return b, err
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (b *simBox) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan struct{})
	go func() { defer close(b.done); b.link.Run(ctx) }()
}

// waitConnected waits until the link is connected (and subscribed to
// its commands) or ctx ends.
func (b *simBox) waitConnected(ctx context.Context) bool {
	for !b.link.Info().Connected {
		select {
		case <-b.changed:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// stop stops a started box.
func (b *simBox) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
	}
}

func (b *simBox) runs(n string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counted[n]
}

// ServeHTTP is the fake backend: POST /api/v1/test/work journals an
// operation (with the command's ref) and counts it; GET
// /api/v1/operations lists the journal; GET /api/v1/status is fixed.
func (b *simBox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/status":
		localapi.WriteJSON(w, 200, apitype.Status{Version: "sim"})
	case r.Method == "GET" && r.URL.Path == "/api/v1/operations":
		before, _ := strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		ops, _ := b.journal.List(journal.Query{Before: before, Limit: limit})
		localapi.WriteJSON(w, 200, ops)
	case r.Method == "POST" && r.URL.Path == "/api/v1/test/work":
		var req struct {
			N string `json:"n"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		b.mu.Lock()
		b.counted[req.N]++
		b.mu.Unlock()
		op := b.op("test.work", r.Header.Get(apitype.RefHeader))
		localapi.WriteJSON(w, 200, op)
	default:
		localapi.WriteJSON(w, 404, map[string]any{"error": map[string]string{"code": "api.not_found", "message": r.URL.Path}})
	}
}

// op journals one ended operation and tells the link, as the agent's
// operations do.
func (b *simBox) op(kind, ref string) journal.Operation {
	op, _ := b.journal.Begin(journal.Operation{Kind: kind, Origin: journal.OriginFleet, Ref: ref})
	op, _ = b.journal.Finish(op.ID, nil, nil, journal.StateDone)
	b.events.Publish("operation", apitype.OperationEvent{ID: op.ID, Kind: op.Kind, State: op.State})
	return op
}

func (b *simBox) burst(n int) {
	for range n {
		b.op("test.burst", "")
	}
}

// memJournal is the journal in memory: the simulator measures the link
// and the broker, not 5000 bbolt files' fsyncs.
type memJournal struct {
	mu  sync.Mutex
	ops []journal.Operation
}

func (j *memJournal) count() int { j.mu.Lock(); defer j.mu.Unlock(); return len(j.ops) }

func (j *memJournal) After(id uint64, limit int) ([]journal.Operation, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []journal.Operation
	for _, op := range j.ops {
		if op.ID > id && len(out) < limit {
			out = append(out, op)
		}
	}
	return out, nil
}

func (j *memJournal) List(q journal.Query) ([]journal.Operation, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if q.Limit <= 0 {
		q.Limit = journal.DefaultLimit
	}
	var out []journal.Operation
	for i := len(j.ops) - 1; i >= 0 && len(out) < q.Limit; i-- {
		op := j.ops[i]
		if (q.Ref == "" || op.Ref == q.Ref) && (q.Before == 0 || op.ID < q.Before) {
			out = append(out, op)
		}
	}
	return out, nil
}

func (j *memJournal) Begin(op journal.Operation) (journal.Operation, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	op.ID, op.State, op.Started = uint64(len(j.ops)+1), journal.StateRunning, time.Now().UTC()
	j.ops = append(j.ops, op)
	return op, nil
}

func (j *memJournal) Finish(id uint64, result json.RawMessage, f *journal.Failure, s journal.State) (journal.Operation, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if s == "" {
		s = journal.StateDone
		if f != nil {
			s = journal.StateFailed
		}
	}
	op := &j.ops[id-1]
	now := time.Now().UTC()
	op.State, op.Result, op.Error, op.Ended = s, result, f, &now
	return *op, nil
}

// recordCount is the archive: records seen per box and id.
type recordCount struct {
	mu      sync.Mutex
	seen    map[string]map[uint64]int
	n       int
	dup     int
	target  int
	reached chan struct{} // closed when n reaches target
}

func newRecordCount() *recordCount { return &recordCount{seen: map[string]map[uint64]int{}} }

func (r *recordCount) add(m fleet.Message) {
	var op struct {
		ID uint64 `json:"id"`
	}
	if json.Unmarshal(m.Payload, &op) == nil {
		r.addID(m.Device, op.ID)
	}
}

func (r *recordCount) addID(dev string, id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[dev] == nil {
		r.seen[dev] = map[uint64]int{}
	}
	r.seen[dev][id]++
	if r.seen[dev][id] == 1 {
		r.n++
		if r.reached != nil && r.n >= r.target {
			close(r.reached)
			r.reached = nil
		}
	} else {
		r.dup++
	}
}

// reach is closed when n records have been seen.
func (r *recordCount) reach(n int) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if r.n >= n {
		close(ch)
	} else {
		r.target, r.reached = n, ch
	}
	return ch
}

func (r *recordCount) of(dev string) map[uint64]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[uint64]bool{}
	for id := range r.seen[dev] {
		out[id] = true
	}
	return out
}

func (r *recordCount) total() int { r.mu.Lock(); defer r.mu.Unlock(); return r.n }
func (r *recordCount) dups() int  { r.mu.Lock(); defer r.mu.Unlock(); return r.dup }

func mustKey() (ed25519.PrivateKey, string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	return priv, base64.StdEncoding.EncodeToString(pub)
}

// simT stands in for a test for fleettest's brokers.
type simT struct {
	dir      string
	mu       sync.Mutex
	cleanups []func()
	n        int
}

func (s *simT) Helper()                           {}
func (s *simT) Fatalf(format string, args ...any) { s.cleanup(); log.Fatalf(format, args...) }
func (s *simT) Skipf(format string, args ...any) {
	s.cleanup()
	log.Fatalf("cannot run: "+format, args...)
}
func (s *simT) Logf(format string, args ...any) {
	if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "should not be run as root") && !strings.Contains(msg, "does not contain") {
		log.Print(msg)
	}
}
func (s *simT) Cleanup(f func()) { s.mu.Lock(); s.cleanups = append(s.cleanups, f); s.mu.Unlock() }
func (s *simT) TempDir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	d := fmt.Sprintf("%s/%d", s.dir, s.n)
	os.MkdirAll(d, 0o700)
	return d
}

func (s *simT) cleanup() {
	s.mu.Lock()
	c := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
	os.RemoveAll(s.dir)
}
