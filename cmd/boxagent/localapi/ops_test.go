package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// stubBackend answers the read calls; these tests are about operations.
type stubBackend struct{}

func (stubBackend) Status(context.Context) apitype.Status           { return apitype.Status{Version: "test"} }
func (stubBackend) Doctor(context.Context) apitype.Doctor           { return apitype.Doctor{} }
func (stubBackend) Board(context.Context) board.Detection           { return board.Detection{} }
func (stubBackend) Boards(context.Context) ([]board.Profile, error) { return []board.Profile{}, nil }
func (stubBackend) ReloadConfig(context.Context) (apitype.ReloadResult, error) {
	return apitype.ReloadResult{}, nil
}
func (stubBackend) Snapshot() journal.Snapshot {
	return journal.Snapshot{Revision: "sha256:test", Board: "test", Config: json.RawMessage(`{"k":1}`)}
}

func newTestServer(t *testing.T) (*Server, *journal.Store) {
	t.Helper()
	store, err := journal.Open(filepath.Join(t.TempDir(), "j.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := New(Options{Backend: stubBackend{}, Journal: store, Events: NewBroker(64),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return s, store
}

func TestLongOperationAnswers202AndStreamsProgress(t *testing.T) {
	s, store := newTestServer(t)
	events, _, cancel := s.events.Subscribe(0, false)
	defer cancel()
	release := make(chan struct{})
	addRoute(s, "POST", "/api/v1/test/long", true, func(w http.ResponseWriter, r *http.Request) error {
		return s.Operate(w, r, Spec{Kind: "test.long", Long: true}, func(ctx context.Context, progress ProgressFunc) (any, error) {
			progress("copying", 50, 100)
			<-release
			progress("copying", 100, 100)
			return map[string]int{"bytes": 100}, nil
		})
	})
	rec := httptest.NewRecorder()
	s.Handler(true).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/test/long", nil))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("long operation: %d %s", rec.Code, rec.Body)
	}
	var acc apitype.Accepted
	json.Unmarshal(rec.Body.Bytes(), &acc)
	if acc.ID == 0 || rec.Header().Get("Location") != acc.Location {
		t.Fatalf("accepted: %+v, Location %q", acc, rec.Header().Get("Location"))
	}
	close(release)

	var states []journal.State
	var lastDone int64
	timeout := time.After(5 * time.Second)
	for len(states) == 0 || states[len(states)-1] == journal.StateRunning {
		select {
		case ev := <-events:
			var oe apitype.OperationEvent
			json.Unmarshal(ev.Data, &oe)
			states = append(states, oe.State)
			if oe.Progress != nil {
				lastDone = oe.Progress.Done
			}
		case <-timeout:
			t.Fatalf("no final event; states so far %v", states)
		}
	}
	if states[len(states)-1] != journal.StateDone || lastDone != 100 {
		t.Errorf("events: states %v, last progress %d", states, lastDone)
	}
	op, err := store.Get(acc.ID)
	if err != nil || op.State != journal.StateDone || len(op.Progress) == 0 || string(op.Result) != `{"bytes":100}` {
		t.Errorf("journal: %+v %v", op, err)
	}
}

func TestShortOperationFailureKeepsStatus(t *testing.T) {
	s, _ := newTestServer(t)
	s.mappers = []ErrorMapper{func(err error) *apitype.Error {
		if err.Error() == "bad input" {
			return Errorf(http.StatusBadRequest, "test.invalid", "bad input", "fix it")
		}
		return nil
	}}
	addRoute(s, "POST", "/api/v1/test/fail", false, func(w http.ResponseWriter, r *http.Request) error {
		return s.Operate(w, r, Spec{Kind: "test.fail"}, func(context.Context, ProgressFunc) (any, error) {
			return nil, errors.New("bad input")
		})
	})
	rec := httptest.NewRecorder()
	s.Handler(true).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/test/fail", nil))
	var op journal.Operation
	json.Unmarshal(rec.Body.Bytes(), &op)
	if rec.Code != http.StatusBadRequest || op.State != journal.StateFailed || op.Error == nil || op.Error.Hint != "fix it" {
		t.Errorf("failed operation: %d %s", rec.Code, rec.Body)
	}
}

func TestShutdownCancelsRunningOperations(t *testing.T) {
	s, store := newTestServer(t)
	started := make(chan struct{})
	op, err := s.Run(Spec{Kind: "test.wait", Long: true}, func(ctx context.Context, _ ProgressFunc) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Get(op.ID)
	if got.State != journal.StateCancelled {
		t.Errorf("after shutdown: %s", got.State)
	}
	if _, err := s.Run(Spec{Kind: "test.late"}, nil); err == nil {
		t.Error("an operation started after shutdown")
	}
}

func TestUnknownCallAndBadID(t *testing.T) {
	s, _ := newTestServer(t)
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/nope", 404, "api.not_found"},
		{"/api/v1/operations/abc", 400, "api.invalid"},
		{"/api/v1/operations/99", 404, "operation.not_found"},
		{"/api/v1/operations?limit=-1", 400, "api.invalid"},
	} {
		rec := httptest.NewRecorder()
		s.Handler(true).ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		var body struct{ Error apitype.Error }
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != c.code || body.Error.Code != c.want {
			t.Errorf("%s: %d %s, want %d %s", c.path, rec.Code, rec.Body, c.code, c.want)
		}
	}
}

// addRoute adds a test call to s's route table and gives it h.
func addRoute(s *Server, method, path string, long bool, h HandlerFunc) {
	s.routes = append(slices.Clip(s.routes), Route{Method: method, Path: path, Mutating: true, Long: long})
	s.Handle(method+" "+path, h)
}
