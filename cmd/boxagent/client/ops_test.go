package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// TestRunOperationInterrupted: the agent goes away during a long
// operation, in each of the ways it does (the event stream cut, the record
// not readable after it, the record still running); the client says the
// operation was interrupted and names it, not a raw transport error.
func TestRunOperationInterrupted(t *testing.T) {
	tests := []struct {
		name   string
		record func(w http.ResponseWriter)
	}{
		{"connection closed", func(w http.ResponseWriter) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}},
		{"still running", func(w http.ResponseWriter) {
			w.Write([]byte(`{"id":7,"kind":"fw.stage","state":"running"}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "api.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan struct{})
			mux := http.NewServeMux()
			mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				<-accepted // the agent dies once the operation started
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			})
			mux.HandleFunc("POST /api/v1/fw/stage", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusAccepted)
				w.Write([]byte(`{"id":7,"location":"/api/v1/operations/7"}`))
				close(accepted)
			})
			mux.HandleFunc("GET /api/v1/operations/7", func(w http.ResponseWriter, r *http.Request) { tt.record(w) })
			srv := &http.Server{Handler: mux}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err = New(sock, "cli").FWStage(ctx, strings.Repeat("a", 64), "", nil)
			var ie *InterruptedError
			if !errors.As(err, &ie) || ie.ID != 7 {
				t.Fatalf("FWStage = %v (%T), want an InterruptedError of operation 7", err, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "the agent stopped during operation 7") || !strings.Contains(msg, "boxagent history 7") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestResult(t *testing.T) {
	op := journal.Operation{ID: 3, Result: json.RawMessage(`{"address":"00:1B:66:AA:BB:CC","removed":"true"}`)}
	r, got, err := result[apitype.BtRemoveResult](op, nil)
	if err != nil || r.Address != "00:1B:66:AA:BB:CC" || got.ID != 3 {
		t.Errorf("result: %+v %+v %v", r, got, err)
	}
	failed := errors.New("failed")
	if r, _, err := result[apitype.BtRemoveResult](op, failed); err != failed || r.Address != "" {
		t.Errorf("a failed call: %+v %v", r, err)
	}
	if _, _, err := result[apitype.BtRemoveResult](journal.Operation{ID: 4}, nil); err != nil {
		t.Errorf("no result: %v", err)
	}
	if _, _, err := result[apitype.BtRemoveResult](journal.Operation{ID: 5, Result: json.RawMessage(`[1]`)}, nil); err == nil || !strings.Contains(err.Error(), "operation 5") {
		t.Errorf("a result of another shape: %v", err)
	}
}
