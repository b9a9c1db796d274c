package localapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// SessionCookie names the page's session cookie.
const SessionCookie = "boxagent_session"

// CSRFTokenHeader carries the session's CSRF token on every mutating call
// once a password protects the TCP listener.
const CSRFTokenHeader = "X-Boxagent-CSRF"

// Sessions authorises requests over TCP once a password is configured:
// a login with the password gives an HttpOnly, SameSite=Strict session
// cookie and a CSRF token; failed logins from one client are slowed down
// with a growing delay. With no password (the loopback-only default) it
// lets everything through.
type Sessions struct {
	// Enabled says whether a password is configured now; it follows config
	// reloads.
	Enabled func() bool
	// Check verifies a password.
	Check func(password string) bool
	TTL   time.Duration
	Now   func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	failures map[string]*failures
}

type session struct {
	csrf    string
	expires time.Time
}

type failures struct {
	count int
	next  time.Time // no attempt before this
}

// maxLoginDelay caps the growing delay between failed logins.
const maxLoginDelay = 60 * time.Second

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sessions) enabled() bool { return s != nil && s.Enabled != nil && s.Enabled() }

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("cannot read random bytes: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// lookup returns the request's live session, if any.
func (s *Sessions) lookup(r *http.Request) (*session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[c.Value]
	if !ok {
		return nil, false
	}
	if s.now().After(sess.expires) {
		delete(s.sessions, c.Value)
		return nil, false
	}
	return sess, true
}

// Authenticated says whether r may see the page and read the API.
func (s *Sessions) Authenticated(r *http.Request) bool {
	if !s.enabled() {
		return true
	}
	_, ok := s.lookup(r)
	return ok
}

// authorize checks a TCP request to the API.
func (s *Sessions) authorize(r *http.Request, mutating bool) *Error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	if !s.enabled() {
		if mutating && r.Header.Get(CSRFHeader) == "" {
			return Errorf(http.StatusForbidden, "auth.csrf", "missing "+CSRFHeader+" header", "send the header with every change")
		}
		return nil
	}
	sess, ok := s.lookup(r)
	if !ok {
		return Errorf(http.StatusUnauthorized, "auth.required", "log in first", "open the control page and enter the password")
	}
	if mutating {
		got := r.Header.Get(CSRFTokenHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
			return Errorf(http.StatusForbidden, "auth.csrf", "missing or wrong CSRF token", "reload the page")
		}
	}
	return nil
}

// checkOrigin refuses a browser request sent from another site: when the
// Origin header is present it must name the host the request was sent to.
func checkOrigin(r *http.Request) *Error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return Errorf(http.StatusForbidden, "auth.origin", fmt.Sprintf("request from another site (%s)", o), "")
	}
	return nil
}

// SessionInfo answers GET /api/v1/session and a successful login.
type SessionInfo struct {
	Required      bool   `json:"required"`
	Authenticated bool   `json:"authenticated"`
	CSRF          string `json:"csrf,omitempty"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Password string `json:"password"`
}

func (s *Sessions) info(r *http.Request) SessionInfo {
	if !s.enabled() {
		return SessionInfo{Authenticated: true}
	}
	sess, ok := s.lookup(r)
	if !ok {
		return SessionInfo{Required: true}
	}
	return SessionInfo{Required: true, Authenticated: true, CSRF: sess.csrf}
}

// login checks the password, slowing down repeated failures per client.
func (s *Sessions) login(w http.ResponseWriter, r *http.Request) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	if !s.enabled() {
		writeJSON(w, http.StatusOK, SessionInfo{Authenticated: true})
		return nil
	}
	var req LoginRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	client := clientOf(r)
	now := s.now()
	s.mu.Lock()
	if s.failures == nil {
		s.failures = map[string]*failures{}
		s.sessions = map[string]*session{}
	}
	f := s.failures[client]
	if f != nil && now.Before(f.next) {
		wait := f.next.Sub(now)
		s.mu.Unlock()
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		return Errorf(http.StatusTooManyRequests, "auth.rate_limited",
			fmt.Sprintf("too many failed logins; try again in %ds", int(math.Ceil(wait.Seconds()))), "")
	}
	s.mu.Unlock()

	ok := s.Check != nil && s.Check(req.Password)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		if f == nil {
			f = &failures{}
			s.failures[client] = f
		}
		f.count++
		// 2 s, 4 s, 8 s … from the moment the answer goes out.
		delay := time.Duration(math.Min(float64(maxLoginDelay), float64(time.Second)*math.Pow(2, float64(f.count))))
		f.next = s.now().Add(delay)
		return Errorf(http.StatusUnauthorized, "auth.wrong_password", "wrong password", "")
	}
	delete(s.failures, client)
	ttl := s.TTL
	if ttl == 0 {
		ttl = 12 * time.Hour
	}
	token := randomToken()
	sess := &session{csrf: randomToken(), expires: now.Add(ttl)}
	s.sessions[token] = sess
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(ttl.Seconds()), Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, SessionInfo{Required: true, Authenticated: true, CSRF: sess.csrf})
	return nil
}

func (s *Sessions) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, SessionInfo{Required: s.enabled()})
	return nil
}
