package localapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// TestInProcessOrigin: the in-process handler journals its own origin and
// the request's ref; the socket's cannot be told either.
func TestInProcessOrigin(t *testing.T) {
	s, store := newTestServer(t)
	tests := []struct {
		name       string
		h          http.Handler
		origin     string
		wantOrigin journal.Origin
		wantRef    string
	}{
		{"fleet", s.InProcess(journal.OriginFleet), "", journal.OriginFleet, "cmd-1"},
		{"fleet ignores the origin header", s.InProcess(journal.OriginFleet), "provision", journal.OriginFleet, "cmd-1"},
		{"socket cannot claim fleet or a ref", s.Handler(true), "fleet", journal.OriginCLI, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/api/v1/config/reload", nil)
			req.Header.Set(apitype.RefHeader, "cmd-1")
			if tt.origin != "" {
				req.Header.Set(apitype.OriginHeader, tt.origin)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("reload: %d %s", rec.Code, rec.Body)
			}
			ops, err := store.List(journal.Query{Limit: 1})
			if err != nil || len(ops) != 1 {
				t.Fatalf("journal: %v %v", ops, err)
			}
			if ops[0].Origin != tt.wantOrigin || ops[0].Ref != tt.wantRef {
				t.Errorf("journalled origin %q ref %q, want %q %q", ops[0].Origin, ops[0].Ref, tt.wantOrigin, tt.wantRef)
			}
		})
	}
}
