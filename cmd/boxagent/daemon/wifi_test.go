package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/testbus"
	"github.com/boxagent/boxagent/wifi"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

func TestWiFiConfigSection(t *testing.T) {
	doc := `[wifi]
interface = "wlan0"
[[wifi.network]]
ssid = "home"
psk = "correct horse"
priority = 10
[[wifi.network]]
ssid = "cafe"
psk = "short"
`
	_, err := config.Parse("config.toml", []byte(doc))
	if err == nil || err.Error() != `config.toml:9: wifi.network[1].psk: 5 characters is too short: a passphrase has 8 to 63` {
		t.Fatalf("Parse = %v", err)
	}
	cfg, err := config.Parse("config.toml", []byte(strings.Replace(doc, `"short"`, `"long enough"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w := wifiConfig(cfg); w.Interface != "wlan0" || len(w.Networks) != 2 || w.Networks[0].Priority != 10 {
		t.Errorf("wifi = %+v", w)
	}
	snap := string(cfg.Snapshot())
	if strings.Contains(snap, "correct horse") || !strings.Contains(snap, config.Fingerprint("correct horse")) {
		t.Errorf("the snapshot does not fingerprint the PSK: %s", snap)
	}
	if wifiConfig(config.Default()).Networks != nil {
		t.Error("the default config has Wi-Fi networks")
	}
}

func TestMapWiFiError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{wifi.Network{SSID: "x", PSK: "1"}.Validate(), http.StatusBadRequest, "wifi.invalid"},
		{&wifi.Error{Op: "join", Err: wifi.ErrWrongPassword}, http.StatusUnauthorized, "wifi.wrong_password"},
		{&wifi.Error{Op: "join", Err: wifi.ErrNotFound}, http.StatusNotFound, "wifi.not_found"},
		{&wifi.Error{Op: "join", Err: wifi.ErrRejected}, http.StatusBadGateway, "wifi.rejected"},
		{&wifi.Error{Op: "open", Err: wifi.ErrNoSupplicant}, http.StatusServiceUnavailable, "wifi.absent"},
	} {
		e := mapWiFiError(c.err)
		if e == nil || e.Status != c.status || e.Code != c.code {
			t.Errorf("mapWiFiError(%v) = %+v, want %d %s", c.err, e, c.status, c.code)
		}
	}
	if e := mapWiFiError(wifi.Network{SSID: "x", PSK: "1"}.Validate()); !strings.HasPrefix(e.Message, "psk: ") {
		t.Errorf("the message does not name the field: %q", e.Message)
	}
	if mapWiFiError(errors.New("other")) != nil {
		t.Error("mapWiFiError claims a foreign error")
	}
}

// wifiTestBus runs a private dbus-daemon (the real one, the test's config)
// and returns a connection to it.
func wifiTestBus(t *testing.T) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(testbus.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestCheckWiFi(t *testing.T) {
	conn := wifiTestBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host := t.TempDir()
	p := paths.Paths{HostRoot: host}
	write := func(rel, body string) {
		t.Helper()
		full := filepath.Join(host, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(host, "proc"), 0o755)
	want := func(name, result, detail string) {
		t.Helper()
		c := checkWiFi(ctx, conn, p, "")
		if c.Result != result || !strings.Contains(c.Detail, detail) {
			t.Errorf("%s: check = %+v, want %s …%s…", name, c, result, detail)
		}
		if result != apitype.CheckOK && result != apitype.CheckSkip && c.Fix == "" {
			t.Errorf("%s: no fix: %+v", name, c)
		}
	}
	want("no radio", apitype.CheckSkip, "no wireless interface")
	os.MkdirAll(filepath.Join(host, "sys/class/net/wlan0/wireless"), 0o755)
	want("not installed", apitype.CheckFail, "not installed")
	write("usr/sbin/wpa_supplicant", "")
	want("not running", apitype.CheckFail, "not on the system bus")
	write("proc/4242/comm", "wpa_supplicant\n")
	write("proc/4242/cmdline", "/sbin/wpa_supplicant\x00-i\x00wlan0\x00-c\x00/etc/wpa.conf\x00")
	want("without -u", apitype.CheckFail, "without -u")
	if reply, err := conn.RequestName(wifi.SupplicantName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own %s: %v %v", wifi.SupplicantName, reply, err)
	}
	want("on the bus", apitype.CheckOK, "wpa_supplicant answers")
	if reply, err := conn.RequestName("net.connman.iwd", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own net.connman.iwd: %v %v", reply, err)
	}
	want("iwd", apitype.CheckWarn, "iwd is running")
	if c := checkWiFi(ctx, conn, p, "wlan7"); c.Result != apitype.CheckWarn || c.Fix == "" {
		t.Errorf("configured interface missing: %+v", c)
	}
}

func TestWiFiRouteMetricConfig(t *testing.T) {
	for _, c := range []struct {
		doc, err string
		metric   uint32
	}{
		{"[wifi]\ninterface = \"wlan0\"\n", "", wifi.DefaultRouteMetric},
		{"[wifi]\nroute_metric = 50\n", "", 50},
		{"[wifi]\nroute_metric = 0\n", "", 0},
		{"[wifi]\ninterface = \"wlan0\"\nroute_metric = -1\n", "config.toml:3: wifi.route_metric: -1 is out of range 0..4294967295", 0},
		{"[wifi]\nroute_metric = 4294967296\n", "config.toml:2: wifi.route_metric: 4294967296 is out of range 0..4294967295", 0},
		{"[wifi]\nroute_metric = \"high\"\n", "config.toml:2: wifi.route_metric: ", 0},
	} {
		cfg, err := config.Parse("config.toml", []byte(c.doc))
		switch {
		case c.err != "":
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %s", c.doc, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.doc, err)
		case wifiConfig(cfg).Metric() != c.metric:
			t.Errorf("%q: metric %d, want %d", c.doc, wifiConfig(cfg).Metric(), c.metric)
		}
	}
	if m := wifiConfig(config.Default()).Metric(); m != 600 {
		t.Errorf("default metric %d", m)
	}
}

func TestCheckCountry(t *testing.T) {
	ok := apitype.Check{Name: "wifi", Result: apitype.CheckOK, Detail: "wpa_supplicant answers"}
	reg := func(s string, err error) func() (string, error) { return func() (string, error) { return s, err } }
	for _, c := range []struct {
		want       wifi.Country
		have       string
		err        error
		result     string
		detail     string
		fixMention string
	}{
		{"DE", "DE", nil, apitype.CheckOK, "; country DE", ""},
		{"", "00", nil, apitype.CheckOK, "; no [wifi] country: the kernel's domain is 00", ""},
		{"DE", "00", nil, apitype.CheckWarn, "; [wifi] country is DE but the kernel's domain is 00", "wireless-regdb"},
		{"DE", "", errors.New("no nl80211"), apitype.CheckOK, "; regulatory domain unknown: no nl80211", ""},
	} {
		got := checkCountry(ok, c.want, reg(c.have, c.err))
		if got.Result != c.result || got.Detail != ok.Detail+c.detail || !strings.Contains(got.Fix, c.fixMention) {
			t.Errorf("%q with the kernel at %q (%v): %+v", c.want, c.have, c.err, got)
		}
	}
}
