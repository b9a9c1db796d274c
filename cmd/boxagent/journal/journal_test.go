package journal

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake Options.Now that ticks one second per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func dbPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "var", "lib", "boxagent", "journal.db")
}

func open(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testSnapshot = Snapshot{
	Revision: "sha256:1f2e",
	Board:    "virtual-board",
	Config:   json.RawMessage(`{"bluetooth":{"adapter":"hci0"},"network":{"wifi":[{"ssid":"home","psk":"fp:9a8b"}]}}`),
}

func begin(t testing.TB, s *Store, kind string, origin Origin) Operation {
	t.Helper()
	op, err := s.Begin(Operation{
		Kind: kind, Origin: origin, Summary: "do " + kind,
		Request:  json.RawMessage(`{"address":"00:1B:66:AA:BB:CC"}`),
		Snapshot: testSnapshot,
	})
	if err != nil {
		t.Fatalf("Begin(%s): %v", kind, err)
	}
	return op
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(ops []Operation) []uint64 {
	var out []uint64
	for _, op := range ops {
		out = append(out, op.ID)
	}
	return out
}

func TestLifecycle(t *testing.T) {
	clk := newClock()
	s := open(t, dbPath(t), Options{Now: clk.Now})

	op := begin(t, s, "bt.pair", OriginCLI)
	if op.ID != 1 || op.State != StateRunning || op.Started.IsZero() || op.Ended != nil {
		t.Fatalf("Begin = %+v, want id 1, running, started, not ended", op)
	}
	steps := []Progress{
		{Message: "scanning"},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Message: "pairing", Done: 1, Total: 2},
	}
	for _, p := range steps {
		if err := s.AddProgress(op.ID, p); err != nil {
			t.Fatalf("AddProgress: %v", err)
		}
	}
	got, err := s.Get(op.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if mustJSON(t, got.Snapshot) != mustJSON(t, testSnapshot) || got.Summary != "do bt.pair" || string(got.Request) != `{"address":"00:1B:66:AA:BB:CC"}` {
		t.Errorf("Get lost what Begin recorded: %+v", got)
	}
	if len(got.Progress) != 2 || got.Progress[0].Message != "scanning" || got.Progress[0].Time.IsZero() ||
		!got.Progress[1].Time.Equal(steps[1].Time) || got.Progress[1].Done != 1 || got.Progress[1].Total != 2 {
		t.Errorf("Progress = %+v", got.Progress)
	}

	fin, err := s.Finish(op.ID, json.RawMessage(`{"paired":true}`), nil, "")
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if fin.State != StateDone || fin.Ended == nil || !fin.Ended.After(fin.Started) || string(fin.Result) != `{"paired":true}` || fin.Error != nil || len(fin.Progress) != 2 {
		t.Errorf("Finish = %+v", fin)
	}
	got, err = s.Get(op.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if mustJSON(t, got) != mustJSON(t, fin) {
		t.Errorf("Get after Finish:\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, fin))
	}
}

func TestJSONShape(t *testing.T) {
	ended := time.Date(2026, 11, 27, 8, 0, 1, 0, time.UTC)
	op := Operation{
		ID: 7, Kind: "config.reload", Origin: OriginWeb, State: StateFailed,
		Started: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Ended: &ended,
		Snapshot: Snapshot{Revision: "r1", Board: "b", Config: json.RawMessage(`{}`)},
		Error:    &Failure{Code: "config.invalid", Message: "bad"},
	}
	want := `{"id":7,"kind":"config.reload","origin":"web","snapshot":{"revision":"r1","board":"b","config":{}},` +
		`"state":"failed","started":"2026-11-27T08:00:00Z","ended":"2026-11-27T08:00:01Z","error":{"code":"config.invalid","message":"bad"}}`
	if got := mustJSON(t, op); got != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
}

func TestBeginRefuses(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	tests := []struct {
		name string
		op   Operation
	}{
		{"no kind", Operation{Origin: OriginCLI}},
		{"no origin", Operation{Kind: "bt.pair"}},
		{"unknown origin", Operation{Kind: "bt.pair", Origin: "telnet"}},
		{"request not JSON", Operation{Kind: "bt.pair", Origin: OriginCLI, Request: json.RawMessage(`{`)}},
		{"config not JSON", Operation{Kind: "bt.pair", Origin: OriginCLI, Snapshot: Snapshot{Config: json.RawMessage(`nope`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Begin(tt.op); !errors.Is(err, ErrInvalid) {
				t.Errorf("Begin = %v, want ErrInvalid", err)
			}
		})
	}
	if ops, err := s.List(Query{}); err != nil || len(ops) != 0 {
		t.Errorf("List after refused Begins = %v, %v; want nothing written", ids(ops), err)
	}
	// The refused Begins consumed no ids.
	if op := begin(t, s, "bt.pair", OriginCLI); op.ID != 1 {
		t.Errorf("first id = %d, want 1", op.ID)
	}
}

func TestBeginIgnoresOutcomeFields(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	now := time.Now()
	op, err := s.Begin(Operation{
		ID: 99, Kind: "bt.pair", Origin: OriginAuto, State: StateDone, Ended: &now,
		Progress: []Progress{{Message: "x"}}, Result: json.RawMessage(`1`), Error: &Failure{Code: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 1 || got.State != StateRunning || got.Ended != nil || got.Progress != nil || got.Result != nil || got.Error != nil {
		t.Errorf("Get = %+v, want a fresh running operation 1", got)
	}
}

func TestFinishStates(t *testing.T) {
	failure := &Failure{Code: "bluetooth.auth_failed", Message: "org.bluez.Error.AuthenticationFailed", Hint: "put the headset in pairing mode"}
	tests := []struct {
		name    string
		failure *Failure
		state   State
		want    State
		wantErr error
	}{
		{"success", nil, "", StateDone, nil},
		{"failure", failure, "", StateFailed, nil},
		{"cancelled", failure, StateCancelled, StateCancelled, nil},
		{"explicit done", nil, StateDone, StateDone, nil},
		{"interrupted at shutdown", nil, StateInterrupted, StateInterrupted, nil},
		{"running is not final", nil, StateRunning, "", ErrInvalid},
		{"unknown state", nil, "paused", "", ErrInvalid},
	}
	s := open(t, dbPath(t), Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := begin(t, s, "bt.pair", OriginCLI)
			fin, err := s.Finish(op.ID, nil, tt.failure, tt.state)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Finish = %v, want %v", err, tt.wantErr)
			}
			got, gerr := s.Get(op.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if err != nil {
				if got.State != StateRunning {
					t.Errorf("refused Finish changed the state to %q", got.State)
				}
				return
			}
			if fin.State != tt.want || got.State != tt.want {
				t.Errorf("state = %q (stored %q), want %q", fin.State, got.State, tt.want)
			}
			if mustJSON(t, got.Error) != mustJSON(t, tt.failure) {
				t.Errorf("error = %s, want %s", mustJSON(t, got.Error), mustJSON(t, tt.failure))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	finished := begin(t, s, "config.reload", OriginCLI)
	if _, err := s.Finish(finished.ID, nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	running := begin(t, s, "config.reload", OriginCLI)
	const missing = 42

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get missing", func() error { _, err := s.Get(missing); return err }, ErrNotFound},
		{"get zero", func() error { _, err := s.Get(0); return err }, ErrNotFound},
		{"progress missing", func() error { return s.AddProgress(missing, Progress{Message: "x"}) }, ErrNotFound},
		{"progress after finish", func() error { return s.AddProgress(finished.ID, Progress{Message: "x"}) }, ErrFinished},
		{"finish missing", func() error { _, err := s.Finish(missing, nil, nil, ""); return err }, ErrNotFound},
		{"finish twice", func() error { _, err := s.Finish(finished.ID, nil, nil, ""); return err }, ErrFinished},
		{"result not JSON", func() error { _, err := s.Finish(running.ID, json.RawMessage(`{`), nil, ""); return err }, ErrInvalid},
		{"progress while running", func() error { return s.AddProgress(running.ID, Progress{Message: "x"}) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && err.Error() == tt.want.Error() {
				t.Errorf("err = %q, want the operation named in it", err)
			}
		})
	}
}

// fill begins and ends one operation per spec, in order, and returns them.
func fill(t *testing.T, s *Store, specs []Operation) []Operation {
	t.Helper()
	var out []Operation
	for _, spec := range specs {
		op, err := s.Begin(Operation{Kind: spec.Kind, Origin: spec.Origin, Ref: spec.Ref})
		if err != nil {
			t.Fatal(err)
		}
		switch spec.State {
		case StateRunning:
		case StateFailed:
			op, _ = s.Finish(op.ID, nil, &Failure{Code: "x.failed", Message: "no"}, "")
		default:
			op, _ = s.Finish(op.ID, nil, nil, spec.State)
		}
		out = append(out, op)
	}
	return out
}

func TestList(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	fill(t, s, []Operation{
		{Kind: "bt.pair", Origin: OriginCLI, State: StateDone},              // 1
		{Kind: "config.reload", Origin: OriginWeb, State: StateFailed},      // 2
		{Kind: "bt.pair", Origin: OriginWeb, State: StateCancelled},         // 3
		{Kind: "net.apply", Origin: OriginAuto, State: StateDone},           // 4
		{Kind: "bt.pair", Origin: OriginAuto, State: StateFailed},           // 5
		{Kind: "fw.stage", Origin: OriginCLI, State: StateRunning},          // 6
		{Kind: "bt.pair", Origin: OriginProvision, State: StateDone},        // 7
		{Kind: "fw.add", Origin: OriginFleet, Ref: "c-1", State: StateDone}, // 8
	})
	if err := s.AddProgress(6, Progress{Message: "writing"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		q    Query
		want []uint64
	}{
		{"all", Query{}, []uint64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"limit", Query{Limit: 3}, []uint64{8, 7, 6}},
		{"negative limit is the default", Query{Limit: -1}, []uint64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"before", Query{Before: 5}, []uint64{4, 3, 2, 1}},
		{"before and limit", Query{Before: 5, Limit: 2}, []uint64{4, 3}},
		{"before the first", Query{Before: 1}, nil},
		{"before beyond the last", Query{Before: 100}, []uint64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"ref", Query{Ref: "c-1"}, []uint64{8}},
		{"other ref", Query{Ref: "c-2"}, nil},
		{"fleet", Query{Origin: "fleet"}, []uint64{8}},
		{"kind", Query{Kind: "bt.pair"}, []uint64{7, 5, 3, 1}},
		{"kind and limit", Query{Kind: "bt.pair", Limit: 2}, []uint64{7, 5}},
		{"kind and before", Query{Kind: "bt.pair", Before: 5}, []uint64{3, 1}},
		{"origin", Query{Origin: "web"}, []uint64{3, 2}},
		{"state", Query{State: StateFailed}, []uint64{5, 2}},
		{"running", Query{State: StateRunning}, []uint64{6}},
		{"all filters", Query{Kind: "bt.pair", Origin: "auto", State: StateFailed}, []uint64{5}},
		{"no match", Query{Kind: "audio.play"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := s.List(tt.q)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got := ids(ops); !slices.Equal(got, tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.q, got, tt.want)
			}
			for _, op := range ops {
				if op.Progress != nil {
					t.Errorf("operation %d has progress without WithProgress", op.ID)
				}
			}
		})
	}

	for _, tt := range []struct {
		after uint64
		limit int
		want  []uint64
	}{{0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8}}, {5, 0, []uint64{6, 7, 8}}, {2, 2, []uint64{3, 4}}, {8, 0, nil}, {100, 0, nil}} {
		ops, err := s.After(tt.after, tt.limit)
		if got := ids(ops); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("After(%d, %d) = %v, %v; want %v", tt.after, tt.limit, got, err, tt.want)
		}
	}

	ops, err := s.List(Query{State: StateRunning, WithProgress: true})
	if err != nil || len(ops) != 1 || len(ops[0].Progress) != 1 || ops[0].Progress[0].Message != "writing" {
		t.Errorf("List(WithProgress) = %+v, %v", ops, err)
	}
}

func TestListPaging(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	var specs []Operation
	for i := range 23 {
		specs = append(specs, Operation{Kind: fmt.Sprintf("k%d", i%2), Origin: OriginCLI, State: StateDone})
	}
	fill(t, s, specs)

	tests := []struct {
		name  string
		q     Query
		pages int
		want  int
	}{
		{"all by 5", Query{Limit: 5}, 5, 23},
		{"all by 23", Query{Limit: 23}, 1, 23},
		{"k1 by 4", Query{Limit: 4, Kind: "k1"}, 3, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []uint64
			q, pages := tt.q, 0
			for {
				ops, err := s.List(q)
				if err != nil {
					t.Fatal(err)
				}
				if len(ops) == 0 {
					break
				}
				pages++
				all = append(all, ids(ops)...)
				q.Before = ops[len(ops)-1].ID
			}
			if pages != tt.pages || len(all) != tt.want {
				t.Errorf("%d pages, %d operations; want %d, %d", pages, len(all), tt.pages, tt.want)
			}
			if !slices.IsSortedFunc(all, func(a, b uint64) int { return int(b) - int(a) }) || len(slices.Compact(slices.Clone(all))) != len(all) {
				t.Errorf("pages not strictly newest first: %v", all)
			}
		})
	}
}

func TestPruneAcrossRestarts(t *testing.T) {
	path := dbPath(t)
	rounds := []struct {
		keep   int
		begins int
		want   []uint64
	}{
		{keep: 5, begins: 3, want: []uint64{3, 2, 1}},
		{keep: 5, begins: 4, want: []uint64{7, 6, 5, 4, 3}},
		{keep: 5, begins: 6, want: []uint64{13, 12, 11, 10, 9}},
		{keep: 3, begins: 0, want: []uint64{13, 12, 11}}, // a smaller Keep applies at Open
		{keep: 3, begins: 1, want: []uint64{14, 13, 12}},
		{keep: 10, begins: 2, want: []uint64{16, 15, 14, 13, 12}},
		{keep: 1, begins: 2, want: []uint64{18}},
	}
	for i, r := range rounds {
		s, err := Open(path, Options{Keep: r.keep})
		if err != nil {
			t.Fatal(err)
		}
		for range r.begins {
			op := begin(t, s, "net.apply", OriginAuto)
			if err := s.AddProgress(op.ID, Progress{Message: "up"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Finish(op.ID, nil, nil, ""); err != nil {
				t.Fatal(err)
			}
		}
		ops, err := s.List(Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(ops); !slices.Equal(got, r.want) {
			t.Errorf("round %d (keep %d): ids %v, want %v", i, r.keep, got, r.want)
		}
		oldest := r.want[len(r.want)-1]
		if oldest > 1 {
			if _, err := s.Get(oldest - 1); !errors.Is(err, ErrNotFound) {
				t.Errorf("round %d: Get(%d) = %v, want ErrNotFound", i, oldest-1, err)
			}
			if err := s.AddProgress(oldest-1, Progress{Message: "x"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("round %d: AddProgress(%d) = %v, want ErrNotFound", i, oldest-1, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPruneDropsRunning(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, Options{Keep: 2})
	first := begin(t, s, "fw.stage", OriginCLI) // still running when pruned
	begin(t, s, "bt.pair", OriginCLI)
	begin(t, s, "bt.pair", OriginCLI)
	if err := s.AddProgress(first.ID, Progress{Message: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddProgress on a pruned operation = %v, want ErrNotFound", err)
	}
	if _, err := s.Finish(first.ID, nil, nil, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Finish on a pruned operation = %v, want ErrNotFound", err)
	}
	s.Close()
	s = open(t, path, Options{Keep: 2})
	if n := s.Recovered(); n != 2 {
		t.Errorf("Recovered = %d, want the 2 kept running operations", n)
	}
}

func TestIDsMonotonicAcrossRestarts(t *testing.T) {
	path := dbPath(t)
	var last uint64
	for round := range 4 {
		// Keep 1 so pruning empties all but one: the ids must still grow.
		s, err := Open(path, Options{Keep: 1})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			op := begin(t, s, "config.reload", OriginCLI)
			if op.ID != last+1 {
				t.Errorf("round %d: id %d after %d", round, op.ID, last)
			}
			last = op.ID
		}
		s.Close()
	}
}

func TestRecoverOnOpen(t *testing.T) {
	path := dbPath(t)
	clk := newClock()
	s := open(t, path, Options{Now: clk.Now})
	done := begin(t, s, "bt.pair", OriginCLI)
	done, _ = s.Finish(done.ID, nil, nil, "")
	a := begin(t, s, "fw.stage", OriginWeb)
	if err := s.AddProgress(a.ID, Progress{Message: "writing update.zip"}); err != nil {
		t.Fatal(err)
	}
	lastSign, _ := s.Get(a.ID)
	b := begin(t, s, "bt.connect", OriginAuto)
	s.Close()
	clk.t = clk.t.Add(time.Hour) // the agent comes back an hour later

	s = open(t, path, Options{Now: clk.Now})
	if n, ops := s.Recovered(), s.Interrupted(); n != 2 || len(ops) != 2 || ops[0].ID != a.ID || ops[1].ID != b.ID {
		t.Errorf("Recovered = %d, Interrupted = %+v; want a and b", n, ops)
	}
	for _, tt := range []struct {
		id    uint64
		ended time.Time // the last sign of life, not the next start
	}{{a.ID, lastSign.Progress[0].Time}, {b.ID, b.Started}} {
		op, err := s.Get(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if op.State != StateInterrupted || op.Ended == nil || !op.Ended.Equal(tt.ended) ||
			op.Error == nil || op.Error.Code != interruptedFailure.Code ||
			!strings.HasPrefix(op.Error.Message, interruptedFailure.Message+"; the agent's next start found it running at 2026-11-27T09:") {
			t.Errorf("operation %d after reopen = %+v (%+v), want interrupted, ended %s", tt.id, op, op.Error, tt.ended)
		}
		if _, err := s.Finish(tt.id, nil, nil, ""); !errors.Is(err, ErrFinished) {
			t.Errorf("Finish on an interrupted operation = %v, want ErrFinished", err)
		}
	}
	// What the next start did about it joins its story; only there.
	if err := s.AddRecovery(a.ID, "removed the partial copy"); err != nil {
		t.Fatal(err)
	}
	if op, _ := s.Get(a.ID); len(op.Progress) != 2 || op.Progress[1].Message != "removed the partial copy" {
		t.Errorf("after AddRecovery: progress %+v", op.Progress)
	}
	if err := s.AddRecovery(done.ID, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddRecovery on a done operation = %v, want ErrInvalid", err)
	}
	if got, _ := s.Get(done.ID); mustJSON(t, got) != mustJSON(t, done) {
		t.Errorf("finished operation changed by recovery:\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, done))
	}
	s.Close()

	s = open(t, path, Options{Now: clk.Now})
	if n := s.Recovered(); n != 0 {
		t.Errorf("second reopen Recovered = %d, want 0", n)
	}
}

func TestProgressBounded(t *testing.T) {
	tests := []struct {
		adds        int
		wantLen     int
		wantDropped int64
	}{
		{adds: 0, wantLen: 0},
		{adds: 1, wantLen: 1},
		{adds: MaxProgress, wantLen: MaxProgress},
		{adds: MaxProgress + 1, wantLen: MaxProgress, wantDropped: 1},
		{adds: 1000, wantLen: MaxProgress, wantDropped: 1000 - MaxProgress},
	}
	s := open(t, dbPath(t), Options{})
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.adds), func(t *testing.T) {
			op := begin(t, s, "fw.stage", OriginCLI)
			for i := range tt.adds {
				if err := s.AddProgress(op.ID, Progress{Message: fmt.Sprint(i), Done: int64(i), Total: int64(tt.adds)}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Get(op.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Progress) != tt.wantLen || got.ProgressDropped != tt.wantDropped {
				t.Fatalf("%d entries, %d dropped; want %d, %d", len(got.Progress), got.ProgressDropped, tt.wantLen, tt.wantDropped)
			}
			if tt.adds == 0 {
				return
			}
			// The first entry, then the newest ones in order.
			want := []int64{0}
			for i := tt.adds - tt.wantLen + 1; i < tt.adds; i++ {
				want = append(want, int64(i))
			}
			var gotDone []int64
			for _, p := range got.Progress {
				gotDone = append(gotDone, p.Done)
			}
			if !slices.Equal(gotDone, want) {
				t.Errorf("kept %v, want %v", gotDone, want)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, Options{})
	s.Close()
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Dir(path), 0o700 | os.ModeDir},
		{path, 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.want)
		}
	}

	// A file left looser by hand is tightened.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, path, Options{}).Close()
	if fi, _ := os.Stat(path); fi.Mode() != 0o600 {
		t.Errorf("reopened file mode %v, want 0600", fi.Mode())
	}
}

func TestOpenLocked(t *testing.T) {
	path := dbPath(t)
	open(t, path, Options{})
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	if err := os.WriteFile(path, []byte("this is not a bbolt file, not at all, it is far too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a garbage file: %v, want it moved aside", err)
	}
	defer s.Close()
	if s.Damage() == nil {
		t.Error("a garbage file opened without a Damage")
	}
}

func TestConcurrent(t *testing.T) {
	s := open(t, dbPath(t), Options{Keep: 500})
	const workers, each = 8, 10
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[uint64]bool{}
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				op, err := s.Begin(Operation{Kind: "bt.connect", Origin: OriginAuto, Summary: fmt.Sprint(w, i)})
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.AddProgress(op.ID, Progress{Message: "connecting"}); err != nil {
					t.Error(err)
				}
				if _, err := s.List(Query{Limit: 5}); err != nil {
					t.Error(err)
				}
				if _, err := s.Finish(op.ID, nil, nil, ""); err != nil {
					t.Error(err)
				}
				mu.Lock()
				if seen[op.ID] {
					t.Errorf("id %d given twice", op.ID)
				}
				seen[op.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ops, err := s.List(Query{Limit: 1000, State: StateDone})
	if err != nil || len(ops) != workers*each {
		t.Errorf("List = %d done operations, %v; want %d", len(ops), err, workers*each)
	}
}

// BenchmarkBeginFinish is the journal's cost of one short mutation: two
// committed (fsynced) transactions.
func BenchmarkBeginFinish(b *testing.B) {
	s := open(b, dbPath(b), Options{})
	b.ReportAllocs()
	result := json.RawMessage(`{"ok":true}`)
	for b.Loop() {
		op, err := s.Begin(Operation{Kind: "config.reload", Origin: OriginCLI, Snapshot: testSnapshot})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Finish(op.ID, result, nil, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWarmOpenWritesNothing: opening a journal with nothing to recover
// only reads it (a write transaction fsyncs twice, and the agent opens
// the journal before it says READY); one with something to recover
// writes.
func TestWarmOpenWritesNothing(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, Options{})
	done := begin(t, s, "config.reload", OriginCLI)
	if _, err := s.Finish(done.ID, nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sum := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", sha256.Sum256(b))
	}
	before := sum()
	open(t, path, Options{}).Close()
	if sum() != before {
		t.Error("a warm open with nothing to recover wrote the file")
	}
	s = open(t, path, Options{})
	begin(t, s, "fw.stage", OriginCLI) // left running: the next open recovers it
	s.Close()
	before = sum()
	s = open(t, path, Options{})
	if s.Recovered() != 1 || sum() == before {
		t.Errorf("an open with a running operation: Recovered %d, file changed %v", s.Recovered(), sum() != before)
	}
	s.Close()
	// Fewer kept than held: pruned, so written.
	before = sum()
	s = open(t, path, Options{Keep: 1})
	s.Close()
	if sum() == before {
		t.Error("an open that prunes did not write")
	}
}
