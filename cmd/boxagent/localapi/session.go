package localapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

// Sessions authorises every request that comes over TCP, loopback
// included (other processes on a box are not trusted): a login with the
// password gives an HttpOnly, SameSite=Strict session cookie and a CSRF
// token. Logins are expensive (argon2id), so they are rationed: one
// attempt in flight per client (the slot is taken under the lock, a
// second one gets 429), at most MaxChecks password checks at a time in
// the whole agent, and a growing delay after each failure. Every map is
// bounded.
type Sessions struct {
	// Check verifies a password against the hash in effect.
	Check func(password string) bool
	// HostAllowed says whether a Host header names this box; nil allows
	// every host. See CheckHost.
	HostAllowed func(host string) bool
	TTL         time.Duration
	Now         func() time.Time
	// MaxChecks is how many password checks may run at once in the agent
	// (default 1): each one holds the hash's memory (up to 64 MiB).
	MaxChecks int
	// CheckWait is how long a login waits for a free check (default 10 s)
	// before it is answered 429.
	CheckWait time.Duration
	// Save, when set, is given the sessions after every change (login,
	// logout, EndAll) so that they outlive a restart of the agent; the
	// daemon keeps them in its state folder. Restore seeds them.
	Save func([]SavedSession)

	mu       sync.Mutex
	sessions map[string]*session
	failures map[string]*failures
	semOnce  sync.Once
	sem      chan struct{}
}

// sessions are keyed by the SHA-256 of their cookie, so what is saved
// cannot be replayed as a cookie.
type session struct {
	csrf    string
	expires time.Time
}

// SavedSession is a session as saved: the SHA-256 of its cookie (hex),
// its CSRF token and when it ends.
type SavedSession struct {
	ID      string    `json:"id"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

func sessionID(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// Restore seeds the sessions with saved ones that have not ended.
func (s *Sessions) Restore(saved []SavedSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = map[string]*session{}
	}
	now := s.now()
	for _, v := range saved {
		if now.Before(v.Expires) && len(s.sessions) < maxSessions && v.ID != "" && v.CSRF != "" {
			s.sessions[v.ID] = &session{csrf: v.CSRF, expires: v.Expires}
		}
	}
}

// saved lists the sessions for Save. Called with s.mu held.
func (s *Sessions) saved() []SavedSession {
	out := make([]SavedSession, 0, len(s.sessions))
	for id, v := range s.sessions {
		out = append(out, SavedSession{ID: id, CSRF: v.csrf, Expires: v.expires})
	}
	return out
}

// changed hands the sessions to Save. Called with s.mu held; Save must
// not call back into s.
func (s *Sessions) changed() {
	if s.Save != nil {
		s.Save(s.saved())
	}
}

// failures is one client's login record.
type failures struct {
	count    int
	next     time.Time // no attempt before this
	inflight bool      // an attempt is being checked now
}

const (
	// maxLoginDelay caps the growing delay between failed logins.
	maxLoginDelay = 60 * time.Second
	// forgetFailures: a client's count is dropped this long after its
	// last delay ended. A client that keeps trying is never forgotten.
	forgetFailures = 15 * time.Minute
	// maxClients bounds the failure records; maxSessions the sessions.
	maxClients  = 1024
	maxSessions = 64
)

// errBusy: every password check slot stayed taken for CheckWait.
var errBusy = errors.New("busy")

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("cannot read random bytes: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// clientOf keys the back-off: the source address, or its /64 for IPv6,
// where one host holds a whole prefix.
func clientOf(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// lookup returns the request's live session, if any.
func (s *Sessions) lookup(r *http.Request) (*session, bool) {
	c, err := r.Cookie(apitype.SessionCookie)
	if err != nil {
		return nil, false
	}
	id := sessionID(c.Value)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return nil, false
	}
	if s.now().After(sess.expires) {
		delete(s.sessions, id)
		return nil, false
	}
	return sess, true
}

// Authenticated says whether r may see the page and read the API.
func (s *Sessions) Authenticated(r *http.Request) bool {
	_, ok := s.lookup(r)
	return ok
}

// EndAll ends every session: the password changed.
func (s *Sessions) EndAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]*session{}
	s.changed()
}

// Count is the number of live sessions (for tests and status).
func (s *Sessions) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// authorize checks a TCP request to the API: right host, same site, a
// session, and for changes the session's CSRF token.
func (s *Sessions) authorize(r *http.Request, mutating bool) *apitype.Error {
	if err := s.CheckHost(r); err != nil {
		return err
	}
	if err := checkOrigin(r); err != nil {
		return err
	}
	sess, ok := s.lookup(r)
	if !ok {
		return Errorf(http.StatusUnauthorized, "auth.required", "log in first", "open the control page and enter the password (boxagent config password shows it on the box)")
	}
	if mutating {
		got := r.Header.Get(apitype.CSRFTokenHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
			return Errorf(http.StatusForbidden, "auth.csrf", "missing or wrong CSRF token", "reload the page")
		}
	}
	return nil
}

// CheckHost refuses a request whose Host header names another site: a
// DNS-rebinding page (a name of the attacker's that now resolves to the
// box) sends its own name, never one this box answers to.
func (s *Sessions) CheckHost(r *http.Request) *apitype.Error {
	if s.HostAllowed == nil || s.HostAllowed(r.Host) {
		return nil
	}
	return Errorf(http.StatusForbidden, "auth.host", fmt.Sprintf("this box does not answer to the name %q", r.Host),
		"use its address, localhost, or add the name to [http] hosts")
}

// checkOrigin refuses a browser request sent from another site: when the
// Origin header is present it must name the host the request was sent to.
func checkOrigin(r *http.Request) *apitype.Error {
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

func (s *Sessions) info(r *http.Request) apitype.SessionInfo {
	sess, ok := s.lookup(r)
	if !ok {
		return apitype.SessionInfo{Required: true}
	}
	return apitype.SessionInfo{Required: true, Authenticated: true, CSRF: sess.csrf}
}

func tooMany(w http.ResponseWriter, wait time.Duration, msg string) *apitype.Error {
	secs := int(math.Max(1, math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	return Errorf(http.StatusTooManyRequests, "auth.rate_limited", fmt.Sprintf(msg, secs), "")
}

// login checks the password. The client's slot is taken under the lock
// before the (slow, memory-hungry) check, so parallel attempts from one
// client get 429 instead of a check each.
func (s *Sessions) login(w http.ResponseWriter, r *http.Request) error {
	if err := s.CheckHost(r); err != nil {
		return err
	}
	if err := checkOrigin(r); err != nil {
		return err
	}
	var req apitype.LoginRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	client := clientOf(r)
	now := s.now()
	s.mu.Lock()
	if s.failures == nil {
		s.failures = map[string]*failures{}
	}
	if s.sessions == nil {
		s.sessions = map[string]*session{}
	}
	f := s.failures[client]
	switch {
	case f != nil && f.inflight:
		s.mu.Unlock()
		return tooMany(w, time.Second, "a login from this address is being checked; try again in %ds")
	case f != nil && now.Before(f.next):
		s.mu.Unlock()
		return tooMany(w, f.next.Sub(now), "too many failed logins; try again in %ds")
	case f == nil:
		s.pruneFailures(now)
		f = &failures{}
		s.failures[client] = f
	}
	f.inflight = true
	s.mu.Unlock()

	ok, err := s.check(r.Context(), req.Password)

	s.mu.Lock()
	defer s.mu.Unlock()
	f.inflight = false
	if err != nil {
		if f.count == 0 {
			delete(s.failures, client)
		}
		return tooMany(w, time.Second, "the box is checking other logins; try again in %ds")
	}
	if !ok {
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
	s.pruneSessions(now)
	token := randomToken()
	sess := &session{csrf: randomToken(), expires: now.Add(ttl)}
	s.sessions[sessionID(token)] = sess
	s.changed()
	http.SetCookie(w, &http.Cookie{
		Name: apitype.SessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(ttl.Seconds()), Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, apitype.SessionInfo{Required: true, Authenticated: true, CSRF: sess.csrf})
	return nil
}

// check runs one password check when a check slot is free.
func (s *Sessions) check(ctx context.Context, pass string) (bool, error) {
	s.semOnce.Do(func() {
		n := s.MaxChecks
		if n < 1 {
			n = 1
		}
		s.sem = make(chan struct{}, n)
	})
	wait := s.CheckWait
	if wait == 0 {
		wait = 10 * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, errBusy
	}
	defer func() { <-s.sem }()
	return s.Check != nil && s.Check(pass), nil
}

// pruneFailures makes room for one more client record: records whose
// delay ended long ago go first; when the map is still full, the one
// whose delay ends first. Called with s.mu held.
func (s *Sessions) pruneFailures(now time.Time) {
	if len(s.failures) < maxClients {
		return
	}
	prune(s.failures, maxClients,
		func(f *failures) bool { return now.Sub(f.next) > forgetFailures },
		func(f *failures) bool { return f.inflight },
		func(f *failures) time.Time { return f.next })
}

// pruneSessions drops expired sessions and, when there are still
// maxSessions, the one that expires first. Called with s.mu held.
func (s *Sessions) pruneSessions(now time.Time) {
	prune(s.sessions, maxSessions,
		func(v *session) bool { return now.After(v.expires) },
		func(*session) bool { return false },
		func(v *session) time.Time { return v.expires })
}

// prune drops the entries of m that are gone and, when m still holds
// max, the one that ends first; pinned entries stay.
func prune[V any](m map[string]V, max int, gone, pinned func(V) bool, ends func(V) time.Time) {
	var first string
	for k, v := range m {
		switch {
		case pinned(v):
		case gone(v):
			delete(m, k)
		case first == "" || ends(v).Before(ends(m[first])):
			first = k
		}
	}
	if len(m) >= max && first != "" {
		delete(m, first)
	}
}

func (s *Sessions) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(apitype.SessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, sessionID(c.Value))
		s.changed()
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: apitype.SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, apitype.SessionInfo{Required: true})
	return nil
}

// HostOf is the host part of a Host header, lower case, without a port
// or a final dot.
func HostOf(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	for len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	b := []byte(host)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
