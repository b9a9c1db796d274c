package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

// demoHash is the argon2id hash of "boxagent" (deploy/vm/demo.toml's).
const demoHash = "$argon2id$v=19$m=65536,t=2,p=2$Ym94YWdlbnQtZGVtby0xNg$xIFMKrFDubzEY9hLaUNH/cofF+vzuhZjZ0AQe/Qj2Fs"

type webClient struct {
	t    *testing.T
	base string
	http *http.Client
}

func newWebClient(t *testing.T, addr string) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, base: "http://" + addr, http: &http.Client{
		Jar: jar,
		// The page's redirects are part of what is tested.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *webClient) do(method, path, body string, headers ...string) (int, string, http.Header) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestPageAuthentication(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "[http]\nlisten = \"127.0.0.1:0\"\npassword_hash = \""+demoHash+"\"\n")
	p := startAgent(t, root)
	c := newWebClient(t, p.http)

	// Before a login: pages redirect, the API answers 401, the login page is public.
	if code, _, h := c.do("GET", "/", ""); code != http.StatusSeeOther || h.Get("Location") != "/login.html" {
		t.Errorf("GET / before login: %d %q", code, h.Get("Location"))
	}
	if code, body, _ := c.do("GET", "/api/v1/status", ""); code != http.StatusUnauthorized || !strings.Contains(body, "auth.required") {
		t.Errorf("GET status before login: %d %s", code, body)
	}
	if code, _, _ := c.do("GET", "/login.html", ""); code != http.StatusOK {
		t.Errorf("GET /login.html: %d", code)
	}
	// A login from another site is refused before the password is looked at.
	if code, body, _ := c.do("POST", "/api/v1/login", `{"password":"boxagent"}`, "Origin", "http://evil.example"); code != http.StatusForbidden || !strings.Contains(body, "auth.origin") {
		t.Errorf("cross-site login: %d %s", code, body)
	}

	// Log in: a cookie and a CSRF token.
	code, body, h := c.do("POST", "/api/v1/login", `{"password":"boxagent"}`)
	var info apitype.SessionInfo
	json.Unmarshal([]byte(body), &info)
	if code != http.StatusOK || info.CSRF == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	cookie := h.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if code, _, _ := c.do("GET", "/", ""); code != http.StatusOK {
		t.Errorf("GET / after login: %d", code)
	}
	if code, _, _ := c.do("GET", "/api/v1/status", ""); code != http.StatusOK {
		t.Errorf("GET status after login: %d", code)
	}
	// Changes need the session's CSRF token.
	if code, body, _ := c.do("POST", "/api/v1/config/reload", "", "X-Boxagent-Request", "1"); code != http.StatusForbidden || !strings.Contains(body, "auth.csrf") {
		t.Errorf("reload without the token: %d %s", code, body)
	}
	if code, _, _ := c.do("POST", "/api/v1/config/reload", "", apitype.CSRFTokenHeader, "forged"); code != http.StatusForbidden {
		t.Errorf("reload with a wrong token: %d", code)
	}
	if code, body, _ := c.do("POST", "/api/v1/config/reload", "", apitype.CSRFTokenHeader, info.CSRF); code != http.StatusOK {
		t.Errorf("reload with the token: %d %s", code, body)
	}

	// No response carries the password hash: walk the API surface.
	for _, path := range []string{"/api/v1/status", "/api/v1/operations", "/api/v1/operations/1", "/api/v1/doctor", "/api/v1/board", "/api/v1/boards", "/api/v1/session", "/", "/app.js"} {
		_, body, _ := c.do("GET", path, "")
		if strings.Contains(body, demoHash) || strings.Contains(body, "xIFMKrFDubzEY9hLaUNH") {
			t.Errorf("%s gives away the password hash", path)
		}
	}
	if out, _, _ := p.run("history", "1", "--json"); strings.Contains(out, "xIFMKrFDubzEY9hLaUNH") || !strings.Contains(out, `"password_hash": "hmac-sha256:`) {
		t.Errorf("history snapshot does not fingerprint the hash:\n%s", out)
	}

	// Wrong passwords from one client are slowed down.
	other := newWebClient(t, p.http)
	if code, _, _ := other.do("POST", "/api/v1/login", `{"password":"wrong"}`); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	code, body, h = other.do("POST", "/api/v1/login", `{"password":"boxagent"}`)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "auth.rate_limited") {
		t.Errorf("login right after a failure: %d %s (Retry-After %q)", code, body, h.Get("Retry-After"))
	}

	// Logging out ends the session.
	c.do("POST", "/api/v1/logout", "")
	if code, _, _ := c.do("GET", "/api/v1/status", ""); code != http.StatusUnauthorized {
		t.Errorf("status after logout: %d", code)
	}
}
