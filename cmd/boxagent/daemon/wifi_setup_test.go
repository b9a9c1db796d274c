package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/wifi"
)

func setupTestDomain(t *testing.T) *wifiDomain {
	t.Helper()
	root := t.TempDir()
	a := &agent{paths: paths.Paths{Root: root}, cfgPath: filepath.Join(root, "etc/boxagent/config.toml"),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), events: localapi.NewBroker(64), cfg: config.Default()}
	return newWiFiDomain(a)
}

func get(t *testing.T, c *http.Client, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSetupCaptiveRedirects(t *testing.T) {
	srv := httptest.NewServer(setupTestDomain(t).captiveHandler())
	defer srv.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The probes of Android, Apple, Windows, and anything else; the rest
	// of the agent's API and page are not served here.
	for _, p := range []string{"/generate_204", "/gen_204", "/hotspot-detect.html", "/library/test/success.html",
		"/connecttest.txt", "/ncsi.txt", "/", "/index.html", "/app.js", "/api/v1/status", "/api/v1/wifi",
		"/api/v1/operations", "/api/v1/events"} {
		resp, _ := get(t, c, "GET", srv.URL+p, "")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://192.168.4.1/setup.html" {
			t.Errorf("GET %s: %s to %q", p, resp.Status, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/api/v1/wifi/connect", "/api/v1/wifi/forget", "/api/v1/config/reload", "/api/v1/login", "/setup/networks"} {
		resp, _ := get(t, c, "POST", srv.URL+p, `{"ssid":"x"}`)
		if resp.StatusCode/100 == 2 {
			t.Errorf("POST %s answered %s", p, resp.Status)
		}
	}
	for _, p := range []string{"/setup.html", "/setup.js", "/style.css", "/i18n/en.json", "/i18n/zh-CN.json"} {
		resp, body := get(t, c, "GET", srv.URL+p, "")
		if resp.StatusCode != http.StatusOK || body == "" {
			t.Errorf("GET %s: %s", p, resp.Status)
		}
	}
	if _, body := get(t, c, "GET", srv.URL+"/i18n/zh-CN.json", ""); !strings.Contains(body, "setup.heading") {
		t.Errorf("the zh-CN catalogue lacks the setup page's strings")
	}
}

// TestSetupListenerCalls: the page's calls with the hotspot off (the
// state machine behind them is wifi's, tested there: setup_test.go).
func TestSetupListenerCalls(t *testing.T) {
	srv := httptest.NewServer(setupTestDomain(t).captiveHandler())
	defer srv.Close()
	c := srv.Client()
	resp, body := get(t, c, "GET", srv.URL+"/setup/networks", "")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("networks: %s %s", resp.Status, body)
	}
	// The list as the page reads it (setup.js).
	b, _ := json.Marshal(setupNetworks([]wifi.BSS{{SSID: "home", Signal: -40, Security: "wpa2", Band: "2.4GHz", BSSID: "02:00:00:00:00:02"}}))
	if want := `[{"ssid":"home","signal_dbm":-40,"security":"wpa2","band":"2.4GHz"}]`; string(b) != want {
		t.Errorf("networks %s, want %s", b, want)
	}
	for _, c2 := range []struct {
		body   string
		status int
		code   string
	}{
		{`not json`, 400, "wifi.invalid"},
		{`{"ssid":"home","password":"abcdefgh","admin":true}`, 400, "wifi.invalid"},
		{`{"ssid":"home","password":"short"}`, 400, "wifi.invalid"},
		{`{"ssid":"","password":"long enough"}`, 400, "wifi.invalid"},
		// Valid, but the hotspot is not open: nothing is started.
		{`{"ssid":"home","password":"long enough"}`, 409, "wifi.setup.busy"},
	} {
		resp, body := get(t, c, "POST", srv.URL+"/setup/connect", c2.body)
		if resp.StatusCode != c2.status || !strings.Contains(body, `"code":"`+c2.code+`"`) {
			t.Errorf("POST %s: %s %s", c2.body, resp.Status, body)
		}
	}
	_, body = get(t, c, "GET", srv.URL+"/setup/status", "")
	if strings.Contains(body, "password") || !strings.Contains(body, `"state":"off"`) {
		t.Errorf("status %s", body)
	}
}

// TestSetupPasswordOnlyOverUnixSocket: GET /api/v1/wifi/setup asks
// for the password (wifi.Setup.Status) over the unix socket only.
func TestSetupPasswordOnlyOverUnixSocket(t *testing.T) {
	req := httptest.NewRequest("GET", "/api/v1/wifi/setup", nil)
	if overUnixSocket(req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))) {
		t.Error("a TCP request counts as the unix socket")
	}
	if !overUnixSocket(req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/boxagent/api.sock", Net: "unix"}))) {
		t.Error("a unix socket request does not count")
	}
}

func TestSaveWiFiNetworksInEffect(t *testing.T) {
	d := setupTestDomain(t)
	n := wifi.Network{SSID: "home", PSK: "secret password", Priority: 4}
	if err := d.a.saveWiFiNetworks(func(nets []wifi.Network) []wifi.Network { return append(nets, n) }); err != nil {
		t.Fatal(err)
	}
	if got := wifiConfig(d.a.config()).Networks; len(got) != 1 || got[0] != n {
		t.Errorf("networks in effect %+v", got)
	}
	if snap := string(d.a.Snapshot().Config); strings.Contains(snap, "secret password") {
		t.Errorf("the snapshot holds the PSK: %s", snap)
	}
	b, _ := os.ReadFile(d.a.cfgPath)
	if !strings.Contains(string(b), "secret password") {
		t.Errorf("the file lacks the PSK:\n%s", b)
	}
}
