package localapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoginDelayGrowsAndSessionsExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Sessions{
		Enabled: func() bool { return true },
		Check:   func(p string) bool { return p == "right" },
		TTL:     time.Hour,
		Now:     func() time.Time { return now },
	}
	login := func(pass string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"`+pass+`"}`))
		req.RemoteAddr = "192.0.2.7:5555"
		if err := s.login(rec, req); err != nil {
			e := err.(*Error)
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

func TestAuthorizeWithoutPassword(t *testing.T) {
	s := &Sessions{Enabled: func() bool { return false }}
	cases := []struct {
		name     string
		mutating bool
		headers  map[string]string
		want     string
	}{
		{"read", false, nil, ""},
		{"change without header", true, nil, "auth.csrf"},
		{"change with header", true, map[string]string{CSRFHeader: "1"}, ""},
		{"cross-site", true, map[string]string{CSRFHeader: "1", "Origin": "http://evil.example"}, "auth.origin"},
		{"same site", true, map[string]string{CSRFHeader: "1", "Origin": "http://example.com"}, ""},
	}
	for _, c := range cases {
		req := httptest.NewRequest("POST", "http://example.com/api/v1/config/reload", nil)
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
