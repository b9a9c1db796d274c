//go:build lab

package wifi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/internal/wpabus"
)

// labAPFreq is the frequency of the fixture's hostapd (channel 6).
const labAPFreq = 2437

// waitSeen scans the AP's own channel, scan after scan (each ended by
// its ScanDone), until wpa_supplicant's BSS list (kept by BSSAdded
// signals) holds ssid, within timeout. A scan of one channel is short,
// so a scan that misses a freshly started AP under TCG costs a fraction
// of a second, not a full scan, and there is no count to run out of
// (docs/FLAKES.md: TestWiFiGuest/Rejected).
func waitSeen(t *testing.T, l *wifiLab, ssid string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	for n := 1; ; n++ {
		bss, err := l.wifi.ScanChannels(ctx, timeout, labAPFreq)
		if err != nil {
			t.Fatalf("the AP %s was not seen within %s (%d scans of %d MHz): %v", ssid, timeout, n, labAPFreq, err)
		}
		for _, b := range bss {
			if b.SSID == ssid {
				t.Logf("%s seen after %d scans of %d MHz, %s", ssid, n, labAPFreq, time.Since(start).Round(time.Millisecond))
				return
			}
		}
	}
}

// joinLabAP starts hostapd with c, waits until it is seen, and joins n
// with the agent's own join path (Connect); the network is forgotten at
// the end.
func joinLabAP(t *testing.T, l *wifiLab, c guest.HostapdConfig, n Network) Status {
	t.Helper()
	c.Interface = l.ap
	ap := guest.StartHostapd(t, c)
	l.forgetAtEnd(t, n.SSID)
	waitSeen(t, l, n.SSID, 30*time.Second)
	start := time.Now()
	st, err := l.wifi.Connect(context.Background(), n, wifiJoinTimeout)
	if err != nil {
		t.Fatalf("Connect: %v (hostapd log:\n%s)", err, ap.LogTail(15))
	}
	t.Logf("connect to completed in %s: %+v", time.Since(start).Round(time.Millisecond), st)
	return st
}

// wifiNetProps reads the network block wpa_supplicant holds for ssid.
func wifiNetProps(t *testing.T, l *wifiLab, ssid string) map[string]dbus.Variant {
	t.Helper()
	l.wifi.mu.Lock()
	n := l.wifi.nets[ssid]
	l.wifi.mu.Unlock()
	if n == nil {
		t.Fatalf("wpa_supplicant holds no network %q for us", ssid)
	}
	var props map[string]dbus.Variant
	if err := l.conn.Object(wpabus.Service, n.path).Call(wpabus.Props+".Get", 0, wpabus.NetworkIface, "Properties").Store(&props); err != nil {
		t.Fatal(err)
	}
	return props
}

// wifiAuthMode is wpa_supplicant's CurrentAuthMode ("SAE", "WPA2-PSK",
// "NONE").
func wifiAuthMode(t *testing.T, l *wifiLab) string {
	var v dbus.Variant
	if err := l.conn.Object(wpabus.Service, l.wifi.path).Call(wpabus.Props+".Get", 0, wpabus.Iface, "CurrentAuthMode").Store(&v); err != nil {
		t.Fatal(err)
	}
	s, _ := v.Value().(string)
	return s
}

// testWiFiTransition joins a WPA2/WPA3 transition AP (WPA-PSK and SAE,
// management frame protection optional) with the agent's own join path:
// the network block offers both key managements with ieee80211w=1, so
// wpa_supplicant picks SAE, the stronger.
func testWiFiTransition(t *testing.T, l *wifiLab) {
	if !wifiHasSAE(t, l) {
		t.Skip("this wpa_supplicant or driver cannot do SAE (no \"sae\" in Capabilities.KeyMgmt)")
	}
	st := joinLabAP(t, l, guest.HostapdConfig{SSID: "lab-mixed", Security: guest.APTransition, Passphrase: "mixedpassword"},
		Network{SSID: "lab-mixed", PSK: "mixedpassword"})
	if st.Security != SecurityTransition {
		t.Errorf("status = %+v; want security %q", st, SecurityTransition)
	}
	// SAE, the stronger, is what wpa_supplicant picks when the AP offers both.
	checkNetBlock(t, l, "lab-mixed", "WPA-PSK SAE", "1", "SAE")
}

// testWiFiOpen joins an open AP: no PSK, key_mgmt NONE.
func testWiFiOpen(t *testing.T, l *wifiLab) {
	st := joinLabAP(t, l, guest.HostapdConfig{SSID: "lab-open", Security: guest.APOpen}, Network{SSID: "lab-open"})
	if st.Security != SecurityOpen || st.State != StateCompleted {
		t.Errorf("status = %+v; want completed on an open network", st)
	}
	checkNetBlock(t, l, "lab-open", "NONE", "", "NONE")
}

// checkNetBlock checks the network block the agent gave wpa_supplicant
// for ssid (key_mgmt, and ieee80211w unless pmf is "") and the key
// management the link uses (CurrentAuthMode).
func checkNetBlock(t *testing.T, l *wifiLab, ssid, keyMgmt, pmf, authMode string) {
	t.Helper()
	props := wifiNetProps(t, l, ssid)
	km, _ := props["key_mgmt"].Value().(string)
	mfp, _ := props["ieee80211w"].Value().(string)
	mode := wifiAuthMode(t, l)
	t.Logf("network block: key_mgmt=%q ieee80211w=%q; joined with %s", km, mfp, mode)
	if km != keyMgmt || (pmf != "" && mfp != pmf) || mode != authMode {
		t.Errorf("key_mgmt=%q ieee80211w=%q CurrentAuthMode=%q; want %q, %q, %q", km, mfp, mode, keyMgmt, pmf, authMode)
	}
}

// testWiFiCountry sets [wifi] country through wpa_supplicant and reads
// the kernel's regulatory domain back with iw.
func testWiFiCountry(t *testing.T, l *wifiLab) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := l.wifi.SetCountry(ctx, "DE"); err != nil {
		t.Fatal(err)
	}
	if err := l.wifi.SetCountry(ctx, "de"); err == nil {
		t.Error(`SetCountry("de") was accepted`)
	}
	// The kernel's change comes back to wpa_supplicant as an nl80211
	// regulatory event, which it logs.
	if err := l.wpa.WaitLogCount(ctx, "CTRL-EVENT-REGDOM-CHANGE init=USER type=COUNTRY alpha2=DE", 1); err != nil {
		t.Errorf("no regulatory change to DE: %v\n%s", err, l.wpa.LogTail(20))
	} else {
		t.Logf("the kernel applied DE %s after SetCountry", time.Since(start).Round(time.Millisecond))
	}
	reg, err := exec.Command("iw", "reg", "get").CombinedOutput()
	t.Logf("iw reg get:\n%s", reg)
	if err != nil || !strings.Contains(string(reg), "country DE") {
		t.Errorf("iw reg get: %v; want country DE", err)
	}
	// The doctor's reading, over nl80211.
	h, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if d, err := RegDomain(h); err != nil || d != "DE" {
		t.Errorf("RegDomain() = %q, %v", d, err)
	}
}
