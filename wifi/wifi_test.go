package wifi

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

func TestWiFiNetworkValidate(t *testing.T) {
	hex64 := strings.Repeat("0a", 32)
	for _, c := range []struct {
		name string
		n    Network
		key  string // "" when valid
		msg  string
	}{
		{"open", Network{SSID: "cafe"}, "", ""},
		{"wpa2 passphrase", Network{SSID: "home", PSK: "12345678"}, "", ""},
		{"63 chars", Network{SSID: "home", PSK: strings.Repeat("x", 63)}, "", ""},
		{"hex key", Network{SSID: "home", PSK: hex64}, "", ""},
		{"32-byte ssid", Network{SSID: strings.Repeat("s", 32)}, "", ""},
		{"wpa3", Network{SSID: "home", PSK: "12345678", Security: "wpa3"}, "", ""},
		{"empty ssid", Network{PSK: "12345678"}, "ssid", "missing"},
		{"long ssid", Network{SSID: strings.Repeat("s", 33)}, "ssid", "33 bytes"},
		{"utf-8 ssid over 32 bytes", Network{SSID: strings.Repeat("é", 17)}, "ssid", "34 bytes"},
		{"7 chars", Network{SSID: "home", PSK: "1234567"}, "psk", "too short"},
		{"64 non-hex", Network{SSID: "home", PSK: strings.Repeat("g", 64)}, "psk", "hex digits"},
		{"65 chars", Network{SSID: "home", PSK: strings.Repeat("a", 65)}, "psk", "too long"},
		{"control char", Network{SSID: "home", PSK: "1234567\n8"}, "psk", "printable"},
		{"wpa3 hex", Network{SSID: "home", PSK: hex64, Security: "wpa3"}, "psk", "passphrase"},
		{"open with psk", Network{SSID: "home", PSK: "12345678", Security: "open"}, "psk", "open network"},
		{"wpa2 without psk", Network{SSID: "home", Security: "wpa2"}, "psk", "needs a psk"},
		{"bad security", Network{SSID: "home", Security: "wep"}, "security", "not one of"},
		{"priority", Network{SSID: "home", Priority: -1}, "priority", "out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.n.Validate()
			if c.key == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.ConfigKey() != c.key || !strings.Contains(fe.Error(), c.msg) {
				t.Errorf("Validate = %s: %s, want %s: …%s…", fe.ConfigKey(), fe.Error(), c.key, c.msg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if strings.Contains(err.Error(), c.n.PSK) && c.n.PSK != "" {
				t.Errorf("the message shows the PSK: %v", err)
			}
		})
	}
}

func TestWiFiConfigValidate(t *testing.T) {
	c := Config{Interface: "wlan0/x", Networks: []Network{
		{SSID: "home", PSK: "12345678", Priority: 10},
		{SSID: "home", PSK: "short"},
	}}
	keys := func(err error) string {
		var ks []string
		for _, e := range flattenErrs(err) {
			ks = append(ks, e.(*FieldError).ConfigKey())
		}
		return strings.Join(ks, " ")
	}
	if got, want := keys(c.Validate()), "interface network[1].ssid"; got != want {
		t.Errorf("Validate keys = %s, want %s", got, want)
	}
	if got, want := keys(c.ValidateAll()), "interface network[1].ssid network[1].psk"; got != want {
		t.Errorf("ValidateAll keys = %s, want %s", got, want)
	}
	if err := (Config{Networks: []Network{{SSID: "a"}, {SSID: "b", PSK: "12345678"}}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func flattenErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range j.Unwrap() {
			all = append(all, flattenErrs(e)...)
		}
		return all
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func v(x any) dbus.Variant { return dbus.MakeVariant(x) }

func TestWiFiSecurity(t *testing.T) {
	km := func(k ...string) map[string]dbus.Variant {
		return map[string]dbus.Variant{"KeyMgmt": v(k), "Pairwise": v([]string{"ccmp"})}
	}
	for _, c := range []struct {
		priv     bool
		rsn, wpa map[string]dbus.Variant
		want     string
	}{
		{false, nil, nil, SecurityOpen},
		{false, km(), km(), SecurityOpen},
		{true, nil, nil, SecurityWEP},
		{true, km("wpa-psk"), nil, SecurityWPA2},
		{true, km("wpa-psk", "wpa-psk-sha256"), nil, SecurityWPA2},
		{true, km("sae"), nil, SecurityWPA3},
		{true, km("wpa-psk", "sae"), nil, SecurityTransition},
		{true, km("wpa-ft-psk", "ft-sae"), nil, SecurityTransition},
		{true, nil, km("wpa-psk"), SecurityWPA},
		{true, km("wpa-psk"), km("wpa-psk"), SecurityWPA2},
		{true, km("wpa-eap"), nil, SecurityEnterprise},
		{false, km("owe"), nil, SecurityOWE},
	} {
		got, _ := wifiSecurity(c.priv, c.rsn, c.wpa)
		if got != c.want {
			t.Errorf("wifiSecurity(%v, %v, %v) = %s, want %s", c.priv, c.rsn, c.wpa, got, c.want)
		}
	}
}

func TestParseBSS(t *testing.T) {
	b := &BSS{}
	parseBSS(b, map[string]dbus.Variant{
		"SSID": v([]byte("lab")), "BSSID": v([]byte{2, 0, 0, 0, 0, 1}),
		"Signal": v(int16(-30)), "Frequency": v(uint16(2437)), "Privacy": v(true),
		"RSN": v(map[string]dbus.Variant{"KeyMgmt": v([]string{"wpa-psk", "sae"})}),
		"WPA": v(map[string]dbus.Variant{}),
	})
	want := BSS{SSID: "lab", BSSID: "02:00:00:00:00:01", Signal: -30, Frequency: 2437, Band: "2.4GHz", Security: SecurityTransition}
	if strings.Join(b.KeyMgmt, ",") != "wpa-psk,sae" {
		t.Errorf("KeyMgmt = %v", b.KeyMgmt)
	}
	b.KeyMgmt = nil
	if !reflect.DeepEqual(*b, want) {
		t.Errorf("parseBSS = %+v, want %+v", *b, want)
	}
	// A PropertiesChanged carrying only the signal keeps the rest.
	parseBSS(b, map[string]dbus.Variant{"Signal": v(int16(-60))})
	if b.Signal != -60 || b.Security != SecurityTransition || b.SSID != "lab" {
		t.Errorf("after a signal change: %+v", *b)
	}
	if got := wifiBand(5180); got != "5GHz" {
		t.Errorf("wifiBand(5180) = %s", got)
	}
}

func TestWiFiNetworkArgs(t *testing.T) {
	hex64 := strings.Repeat("0a", 32)
	show := func(a map[string]dbus.Variant) string {
		var parts []string
		for _, k := range []string{"ssid", "key_mgmt", "ieee80211w", "scan_ssid", "priority", "psk"} {
			if x, ok := a[k]; ok {
				parts = append(parts, k+"="+x.String())
			}
		}
		return strings.Join(parts, " ")
	}
	for _, c := range []struct {
		n    Network
		sec  string
		want string
	}{
		{Network{SSID: "ab"}, SecurityOpen, `ssid=@ay [0x61, 0x62] key_mgmt="NONE"`},
		{Network{SSID: "ab", PSK: "12345678"}, SecurityWPA2, `ssid=@ay [0x61, 0x62] key_mgmt="WPA-PSK" psk="12345678"`},
		{Network{SSID: "ab", PSK: "12345678", Hidden: true, Priority: 5}, SecurityWPA3,
			`ssid=@ay [0x61, 0x62] key_mgmt="SAE" ieee80211w=@u 2 scan_ssid=1 priority=5 psk="12345678"`},
		{Network{SSID: "ab", PSK: "12345678"}, SecurityTransition, `ssid=@ay [0x61, 0x62] key_mgmt="WPA-PSK SAE" ieee80211w=@u 1 psk="12345678"`},
		{Network{SSID: "ab", PSK: hex64}, SecurityTransition, `ssid=@ay [0x61, 0x62] key_mgmt="WPA-PSK" ieee80211w=@u 1 psk=@ay [` + strings.Repeat("0xa, ", 31) + `0xa]`},
	} {
		if got := show(wifiNetworkArgs(c.n, c.sec)); got != c.want {
			t.Errorf("wifiNetworkArgs(%+v, %s) =\n %s\nwant\n %s", c.n, c.sec, got, c.want)
		}
	}
}

func TestWiFiMessages(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{wifiReason(15), "4-way handshake timeout (usually a wrong password) (15, by the AP)"},
		{wifiReason(-3), "the AP is leaving or was stopped (3, by the station)"},
		{wifiReason(99), "reason code (99, by the AP)"},
		{wifiStatusCode(17), "the AP cannot handle more stations (17)"},
		{(&Error{Op: `join "x"`, Err: ErrWrongPassword, Detail: "the 4-way handshake failed"}).Error(),
			`cannot join "x": wrong password (the 4-way handshake failed)`},
		{(&Error{Op: "scan", Err: ErrNotFound}).Error(), "cannot scan: network not found"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if !errors.Is(&Error{Err: ErrRejected}, ErrRejected) {
		t.Error("Error does not unwrap")
	}
}

func TestUnquoteSSID(t *testing.T) {
	for in, want := range map[string]string{`"lab"`: "lab", "6c6162": "lab"} {
		if got, ok := unquoteSSID(in); !ok || got != want {
			t.Errorf("unquoteSSID(%s) = %q, %v", in, got, ok)
		}
	}
	if _, ok := unquoteSSID("zz"); ok {
		t.Error("unquoteSSID(zz) ok")
	}
}
