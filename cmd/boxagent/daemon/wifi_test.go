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

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/network"
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
		{network.WiFiNetwork{SSID: "x", PSK: "1"}.Validate(), http.StatusBadRequest, "wifi.invalid"},
		{&network.WiFiError{Op: "join", Err: network.ErrWiFiWrongPassword}, http.StatusUnauthorized, "wifi.wrong_password"},
		{&network.WiFiError{Op: "join", Err: network.ErrWiFiNotFound}, http.StatusNotFound, "wifi.not_found"},
		{&network.WiFiError{Op: "join", Err: network.ErrWiFiRejected}, http.StatusBadGateway, "wifi.rejected"},
		{&network.WiFiError{Op: "open", Err: network.ErrWiFiNoSupplicant}, http.StatusServiceUnavailable, "wifi.absent"},
	} {
		e := mapWiFiError(c.err)
		if e == nil || e.Status != c.status || e.Code != c.code {
			t.Errorf("mapWiFiError(%v) = %+v, want %d %s", c.err, e, c.status, c.code)
		}
	}
	if e := mapWiFiError(network.WiFiNetwork{SSID: "x", PSK: "1"}.Validate()); !strings.HasPrefix(e.Message, "psk: ") {
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
		if result != localapi.CheckOK && result != localapi.CheckSkip && c.Fix == "" {
			t.Errorf("%s: no fix: %+v", name, c)
		}
	}
	want("no radio", localapi.CheckSkip, "no wireless interface")
	os.MkdirAll(filepath.Join(host, "sys/class/net/wlan0/wireless"), 0o755)
	want("not installed", localapi.CheckFail, "not installed")
	write("usr/sbin/wpa_supplicant", "")
	want("not running", localapi.CheckFail, "not on the system bus")
	write("proc/4242/comm", "wpa_supplicant\n")
	write("proc/4242/cmdline", "/sbin/wpa_supplicant\x00-i\x00wlan0\x00-c\x00/etc/wpa.conf\x00")
	want("without -u", localapi.CheckFail, "without -u")
	if reply, err := conn.RequestName(network.WiFiService, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own %s: %v %v", network.WiFiService, reply, err)
	}
	want("on the bus", localapi.CheckOK, "wpa_supplicant answers")
	if reply, err := conn.RequestName("net.connman.iwd", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own net.connman.iwd: %v %v", reply, err)
	}
	want("iwd", localapi.CheckWarn, "iwd is running")
	if c := checkWiFi(ctx, conn, p, "wlan7"); c.Result != localapi.CheckWarn || c.Fix == "" {
		t.Errorf("configured interface missing: %+v", c)
	}
}
