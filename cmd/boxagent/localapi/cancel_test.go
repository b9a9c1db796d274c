package localapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// TestCancelOperation: a long operation (a stalled download held the
// firmware lock for up to 30 min) could only end by stopping the agent.
// POST /api/v1/operations/{id}/cancel ends it alone, as cancelled; the
// others run on.
func TestCancelOperation(t *testing.T) {
	s, store := newTestServer(t)
	started := make(chan struct{}, 2)
	addRoute(s, "POST", "/api/v1/test/wait", true, func(w http.ResponseWriter, r *http.Request) error {
		return s.Operate(w, r, Spec{Kind: "test.wait", Long: true}, func(ctx context.Context, progress ProgressFunc) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
	})
	h := s.Handler(true)
	post := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		return rec
	}
	var ids []uint64
	for i := 0; i < 2; i++ {
		var acc apitype.Accepted
		rec := post("/api/v1/test/wait")
		if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil || rec.Code != http.StatusAccepted {
			t.Fatalf("start: %d %s", rec.Code, rec.Body)
		}
		ids = append(ids, acc.ID)
		<-started
	}
	rec := post("/api/v1/operations/" + itoa(ids[0]) + "/cancel")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", rec.Code, rec.Body)
	}
	op := waitEnded(t, store, ids[0])
	if op.State != journal.StateCancelled || op.Error == nil || op.Error.Code != "operation.cancelled" || op.Error.Message != "cancelled on request" {
		t.Errorf("cancelled operation: state %s error %+v", op.State, op.Error)
	}
	if op, _ := store.Get(ids[1]); op.State != journal.StateRunning {
		t.Errorf("the other operation is %s, want running", op.State)
	}
	if rec := post("/api/v1/operations/" + itoa(ids[0]) + "/cancel"); rec.Code != http.StatusConflict {
		t.Errorf("cancel of an ended operation: %d %s, want 409", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/operations/999/cancel"); rec.Code != http.StatusNotFound {
		t.Errorf("cancel of an unknown operation: %d %s, want 404", rec.Code, rec.Body)
	}
	// Over TCP it is a mutation: the CSRF header is needed.
	rec = httptest.NewRecorder()
	s.Handler(false).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/operations/"+itoa(ids[1])+"/cancel", nil))
	if rec.Code < 400 {
		t.Errorf("cancel over TCP without the CSRF header: %d", rec.Code)
	}
	post("/api/v1/operations/" + itoa(ids[1]) + "/cancel")
	waitEnded(t, store, ids[1])
}

func itoa(id uint64) string { return strconv.FormatUint(id, 10) }

func waitEnded(t *testing.T, store *journal.Store, id uint64) journal.Operation {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		op, err := store.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if op.State != journal.StateRunning || time.Now().After(deadline) {
			return op
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCancelQuietOperation: work that ends early without an error when
// its context ends (a scan answers with what it saw) still ends as
// cancelled when a user asked, with its partial result kept. The page's
// Cancel of a scan showed "done" before.
func TestCancelQuietOperation(t *testing.T) {
	s, store := newTestServer(t)
	started := make(chan struct{}, 1)
	addRoute(s, "POST", "/api/v1/test/scan", true, func(w http.ResponseWriter, r *http.Request) error {
		return s.Operate(w, r, Spec{Kind: "test.scan", Long: true}, func(ctx context.Context, progress ProgressFunc) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return []string{"seen so far"}, nil
		})
	})
	h := s.Handler(true)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/test/scan", nil))
	var acc apitype.Accepted
	if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil || rec.Code != http.StatusAccepted {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	<-started
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/operations/"+itoa(acc.ID)+"/cancel", nil))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", rec.Code, rec.Body)
	}
	op := waitEnded(t, store, acc.ID)
	if op.State != journal.StateCancelled || op.Error == nil || op.Error.Message != "cancelled on request" {
		t.Errorf("state %s error %+v, want cancelled on request", op.State, op.Error)
	}
	if string(op.Result) != `["seen so far"]` {
		t.Errorf("result %s, want the partial one kept", op.Result)
	}
}
