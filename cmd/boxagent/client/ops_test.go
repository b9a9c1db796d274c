package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
