package localapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

func TestLoginDelayGrowsAndSessionsExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Sessions{
		Check: func(p string) bool { return p == "right" },
		TTL:   time.Hour,
		Now:   func() time.Time { return now },
	}
	login := func(pass string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"`+pass+`"}`))
		req.RemoteAddr = "192.0.2.7:5555"
		if err := s.login(rec, req); err != nil {
			e := err.(*apitype.Error)
			rec.Code = e.Status
		}
		return rec
	}
	steps := []struct {
		advance time.Duration
		pass    string
		want    int
	}{
		{0, "wrong", http.StatusUnauthorized},               // delay now 2 s
		{time.Second, "right", http.StatusTooManyRequests},  // still inside it
		{2 * time.Second, "wrong", http.StatusUnauthorized}, // delay now 4 s
		{3 * time.Second, "wrong", http.StatusTooManyRequests},
		{2 * time.Second, "right", http.StatusOK}, // resets the count
		{0, "wrong", http.StatusUnauthorized},
	}
	var cookie *http.Cookie
	for i, st := range steps {
		now = now.Add(st.advance)
		rec := login(st.pass)
		if rec.Code != st.want {
			t.Fatalf("step %d (%s after %s): %d, want %d", i, st.pass, st.advance, rec.Code, st.want)
		}
		if st.want == http.StatusOK {
			cookie = rec.Result().Cookies()[0]
		}
	}
	req := httptest.NewRequest("GET", "/api/v1/status", nil)
	req.AddCookie(cookie)
	if !s.Authenticated(req) {
		t.Fatal("a fresh session is not authenticated")
	}
	now = now.Add(2 * time.Hour)
	if s.Authenticated(req) {
		t.Fatal("a session outlived its TTL")
	}
}

// TestAuthorizeNeedsSession: over TCP nothing passes without a session,
// loopback and the old X-Boxagent-Request header included (issue 17,
// finding 1: any local user had the whole API).
func TestAuthorizeNeedsSession(t *testing.T) {
	s := &Sessions{HostAllowed: func(h string) bool { return HostOf(h) == "example.com" }}
	cases := []struct {
		name     string
		mutating bool
		host     string
		headers  map[string]string
		want     string
	}{
		{"read", false, "", nil, "auth.required"},
		{"change with the old header", true, "", map[string]string{apitype.CSRFHeader: "1"}, "auth.required"},
		{"cross-site", true, "", map[string]string{apitype.CSRFHeader: "1", "Origin": "http://evil.example"}, "auth.origin"},
		{"rebinding name", false, "evil.example:8080", nil, "auth.host"},
	}
	for _, c := range cases {
		req := httptest.NewRequest("POST", "http://example.com/api/v1/config/reload", nil)
		req.RemoteAddr = "127.0.0.1:4000"
		if c.host != "" {
			req.Host = c.host
		}
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		err := s.authorize(req, c.mutating)
		got := ""
		if err != nil {
			got = err.Code
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestLoginSlotPerClient: while one login of a client is being checked,
// its others get 429 at once, and at most MaxChecks checks run in the
// whole agent whatever the number of clients (issue 17, finding 3).
func TestLoginSlotPerClient(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	running, peak := 0, 0
	s := &Sessions{
		MaxChecks: 1,
		Check: func(string) bool {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			<-release
			mu.Lock()
			running--
			mu.Unlock()
			return false
		},
	}
	login := func(addr string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"x"}`))
		req.RemoteAddr = addr
		if err := s.login(rec, req); err != nil {
			return err.(*apitype.Error).Status
		}
		return rec.Code
	}
	codes := make(chan int, 40)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- login("192.0.2.1:1000") }()
	}
	// Other clients queue for the one check slot.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); codes <- login(fmt.Sprintf("192.0.2.%d:1000", 10+i)) }(i)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[http.StatusUnauthorized] != 5 || n[http.StatusTooManyRequests] != 31 || peak != 1 {
		t.Errorf("codes %v, peak checks %d; want 5×401 (one per client), 31×429, peak 1", n, peak)
	}
}

// TestLoginRecordsBounded: a flood of clients (an IPv6 attacker has many
// addresses) does not grow the failure map without bound; one /64 is
// one client.
func TestLoginRecordsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Sessions{Check: func(string) bool { return false }, Now: func() time.Time { return now }}
	for i := 0; i < 3*maxClients; i++ {
		req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"x"}`))
		req.RemoteAddr = fmt.Sprintf("[2001:db8:%x::1]:1000", i)
		s.login(httptest.NewRecorder(), req)
	}
	if len(s.failures) > maxClients {
		t.Errorf("%d failure records, want at most %d", len(s.failures), maxClients)
	}
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"x"}`))
	req.RemoteAddr = "[2001:db8:0:0:ffff::2]:1000" // the same /64 as the first
	if clientOf(req) != "2001:db8::/64" {
		t.Errorf("client key %q", clientOf(req))
	}
}

func TestEndAllEndsSessions(t *testing.T) {
	s := &Sessions{Check: func(p string) bool { return p == "right" }}
	rec := httptest.NewRecorder()
	s.login(rec, httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"right"}`)))
	req := httptest.NewRequest("GET", "/api/v1/status", nil)
	req.AddCookie(rec.Result().Cookies()[0])
	if !s.Authenticated(req) {
		t.Fatal("no session after a login")
	}
	s.EndAll()
	if s.Authenticated(req) {
		t.Fatal("a session outlived EndAll")
	}
}
