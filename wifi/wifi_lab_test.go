//go:build lab

package wifi

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/internal/wpabus"
	"github.com/boxagent/boxagent/network"
)

// TestWiFiLab boots the virtual board and runs TestWiFiGuest and
// TestWiFiGuestAgent in it: two mac80211_hwsim radios, hostapd as the AP
// on the first, wpa_supplicant (-u, D-Bus only) on the second, driven
// through this package's client, then through the agent and its CLI.
func TestWiFiLab(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side: boots the virtual board")
	}
	vm.RunGoTests(t, "./wifi", vm.Options{Timeout: 12 * time.Minute}, GuestRun("^TestWiFiGuest")...) // Chromium under TCG: TestWiFiGuestBrowser
}

// GuestRun is the guest's -test.run: def, unless the host's -run names
// tests below the host test (-run 'TestWiFiLab/TestWiFiGuest/Open'),
// which vm.RunGoTests then hands to the guest.
func GuestRun(def string) []string {
	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
		return nil
	}
	return []string{"-test.run=" + def}
}

// wifiLab is the guest side's shared setup.
type wifiLab struct {
	ap, sta string
	conn    *dbus.Conn
	wifi    *Client
	wpa     *guest.Proc // wpa_supplicant, its log

	mu     sync.Mutex
	events []Event
	newEv  chan struct{}
}

func (l *wifiLab) onEvent(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	close(l.newEv)
	l.newEv = make(chan struct{})
	l.mu.Unlock()
}

// mark returns how many events there are so far, for waitEvent.
func (l *wifiLab) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// waitEvent waits for an event after mark that satisfies match.
func (l *wifiLab) waitEvent(t *testing.T, after int, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, e := range l.events[after:] {
			if match(e) {
				l.mu.Unlock()
				return e
			}
		}
		after = len(l.events)
		ch := l.newEv
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s event within %s", what, timeout)
		}
	}
}

func (l *wifiLab) forgetAtEnd(t *testing.T, ssid string) {
	t.Cleanup(func() {
		err := l.wifi.Forget(context.Background(), ssid)
		if err != nil && !errors.Is(err, ErrUnknownNetwork) {
			t.Logf("forget %s: %v", ssid, err)
		}
	})
}

const wifiJoinTimeout = 30 * time.Second

func TestWiFiGuest(t *testing.T) {
	vm.RequireGuest(t)
	radios := guest.Hwsim(t, 2)
	bus := guest.StartSystemBus(t)
	wpa := guest.StartWpaSupplicant(t, bus)
	conn, err := dbus.Connect(bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	l := &wifiLab{ap: radios[0], sta: radios[1], conn: conn, wpa: wpa, newEv: make(chan struct{})}
	start := time.Now()
	l.wifi, err = Open(context.Background(), conn, Options{
		Interface: l.sta, OnEvent: l.onEvent, Rejoin: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.wifi.Close)
	t.Logf("Open (CreateInterface %s) in %s; state %s", l.sta, time.Since(start).Round(time.Millisecond), l.wifi.Status().State)

	t.Run("NoInterface", func(t *testing.T) {
		_, err := Open(context.Background(), conn, Options{Interface: "wlan9"})
		if !errors.Is(err, ErrNoInterface) {
			t.Fatalf("Open(wlan9) = %v, want ErrNoInterface", err)
		}
		t.Log(err)
	})
	t.Run("Scan", func(t *testing.T) { testWiFiScan(t, l) })
	t.Run("WPA2", func(t *testing.T) { testWiFiWPA2(t, l) })
	t.Run("WrongPassword", func(t *testing.T) { testWiFiWrongPassword(t, l) })
	t.Run("WPA3", func(t *testing.T) { testWiFiWPA3(t, l) })
	t.Run("Transition", func(t *testing.T) { testWiFiTransition(t, l) })
	t.Run("Open", func(t *testing.T) { testWiFiOpen(t, l) })
	t.Run("Country", func(t *testing.T) { testWiFiCountry(t, l) })
	t.Run("Hidden", func(t *testing.T) { testWiFiHidden(t, l) })
	t.Run("NotFound", func(t *testing.T) { testWiFiNotFound(t, l) })
	t.Run("Rejected", func(t *testing.T) { testWiFiRejected(t, l) })
	t.Run("Rejoin", func(t *testing.T) { testWiFiRejoin(t, l) })
}

func testWiFiScan(t *testing.T, l *wifiLab) {
	guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-scan", Security: guest.APWPA2, Passphrase: "labpassword"})
	start := time.Now()
	bss, err := l.wifi.Scan(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scan in %s: %d BSS", time.Since(start).Round(time.Millisecond), len(bss))
	i := slices.IndexFunc(bss, func(b BSS) bool { return b.SSID == "lab-scan" })
	if i < 0 {
		t.Fatalf("lab-scan not in the scan: %+v", bss)
	}
	b := bss[i]
	t.Logf("%+v", b)
	if b.Security != SecurityWPA2 || b.Frequency != 2437 || b.Band != "2.4GHz" || b.Signal == 0 || b.BSSID == "" {
		t.Errorf("lab-scan = %+v; want wpa2 on 2437 MHz with a signal and a BSSID", b)
	}
	// The list stays current from signals: it is the same when asked again.
	if got := l.wifi.BSSs(); !slices.ContainsFunc(got, func(x BSS) bool { return x.SSID == "lab-scan" }) {
		t.Errorf("BSSs() lost lab-scan: %+v", got)
	}
}

func testWiFiWPA2(t *testing.T, l *wifiLab) {
	ap := guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-wpa2", Security: guest.APWPA2, Passphrase: "labpassword"})
	l.forgetAtEnd(t, "lab-wpa2")
	start := time.Now()
	st, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-wpa2", PSK: "labpassword"}, wifiJoinTimeout)
	if err != nil {
		t.Fatalf("Connect: %v (hostapd log:\n%s)", err, ap.LogTail(15))
	}
	t.Logf("connect to completed in %s: %+v", time.Since(start).Round(time.Millisecond), st)
	if st.State != StateCompleted || st.SSID != "lab-wpa2" || st.Security != SecurityWPA2 {
		t.Errorf("status = %+v; want completed on lab-wpa2 (wpa2)", st)
	}
	if !slices.ContainsFunc(st.Known, func(k Known) bool { return k.SSID == "lab-wpa2" }) {
		t.Errorf("lab-wpa2 not among the known networks: %+v", st.Known)
	}
	sig, err := l.wifi.SignalPoll(context.Background())
	if err != nil || sig.RSSI == 0 {
		t.Errorf("SignalPoll = %+v, %v", sig, err)
	}
	t.Logf("signal: %+v", sig)
	if !strings.Contains(ap.LogTail(50), "AP-STA-CONNECTED") {
		t.Errorf("hostapd did not see the station: %s", ap.LogTail(20))
	}
	// Addressing: the wired uplinks' DHCP client on the wireless link,
	// dnsmasq behind the AP.
	guest.InitNS.Addr(t, l.ap, "10.77.0.1/24")
	t.Cleanup(func() {
		exec.Command("ip", "addr", "flush", "dev", l.ap).Run()
		exec.Command("ip", "addr", "flush", "dev", l.sta).Run()
	})
	guest.StartDnsmasq(t, guest.DnsmasqConfig{Interface: l.ap, Range: "10.77.0.100,10.77.0.150,255.255.255.0,1h", NoPing: true})
	h, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(l.sta)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := network.OpenRawConn(netns.None(), link.Attrs().Index)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan network.Event, 32)
	c := network.NewDHCPClient(h, rc, network.DHCPConfig{Link: l.sta, ClientIDMAC: true}, func(e network.Event) {
		select {
		case events <- e:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	defer func() { cancel(); <-ran }()
	go func() { c.Run(ctx); close(ran) }()
	start = time.Now()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.State != network.StateBound || e.Lease == nil {
				continue
			}
			t.Logf("DHCP over Wi-Fi: %s in %s (connect to address: %s)", e.Lease.Address, time.Since(start).Round(time.Millisecond), st.State)
			if !strings.HasPrefix(e.Lease.Address.String(), "10.77.0.") {
				t.Errorf("lease %s is not from dnsmasq's range", e.Lease.Address)
			}
			return
		case <-deadline:
			t.Fatalf("no DHCP lease over Wi-Fi within 30s; last: %v", c.Status())
		}
	}
}

func testWiFiWrongPassword(t *testing.T, l *wifiLab) {
	guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-wrong", Security: guest.APWPA2, Passphrase: "labpassword"})
	l.forgetAtEnd(t, "lab-wrong")
	start := time.Now()
	_, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-wrong", PSK: "not-the-password"}, wifiJoinTimeout)
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("Connect with a wrong password = %v; want %q", err, "wrong password")
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the error shows the password: %v", err)
	}
	if slices.ContainsFunc(l.wifi.Status().Known, func(k Known) bool { return k.SSID == "lab-wrong" }) {
		t.Errorf("the failed network was kept: %+v", l.wifi.Status().Known)
	}
	// Refused before anything changes.
	if _, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-wrong", PSK: "short"}, wifiJoinTimeout); !errors.Is(err, ErrInvalid) {
		t.Errorf("Connect with a 5-character PSK = %v; want ErrInvalid", err)
	}
}

// wifiHasSAE says whether wpa_supplicant can do SAE on the interface.
func wifiHasSAE(t *testing.T, l *wifiLab) bool {
	var caps map[string]dbus.Variant
	err := l.conn.Object(wpabus.Service, l.wifi.path).Call(wpabus.Props+".Get", 0, wpabus.Iface, "Capabilities").Store(&caps)
	if err != nil {
		t.Logf("cannot read Capabilities: %v", err)
		return false
	}
	km, _ := caps["KeyMgmt"].Value().([]string)
	t.Logf("key management: %v", km)
	return slices.Contains(km, "sae")
}

func testWiFiWPA3(t *testing.T, l *wifiLab) {
	if !wifiHasSAE(t, l) {
		t.Skip("this wpa_supplicant or driver cannot do SAE (no \"sae\" in Capabilities.KeyMgmt)")
	}
	st := joinLabAP(t, l, guest.HostapdConfig{SSID: "lab-wpa3", Security: guest.APWPA3, Passphrase: "labpassword3"},
		Network{SSID: "lab-wpa3", PSK: "labpassword3"})
	if st.SSID != "lab-wpa3" || st.Security != SecurityWPA3 {
		t.Errorf("status = %+v; want lab-wpa3 (wpa3)", st)
	}
	checkNetBlock(t, l, "lab-wpa3", "SAE", "2", "SAE") // WPA3-Personal requires management frame protection
}

func testWiFiHidden(t *testing.T, l *wifiLab) {
	guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-hidden", Security: guest.APWPA2, Passphrase: "labpassword", Hidden: true})
	l.forgetAtEnd(t, "lab-hidden")
	start := time.Now()
	st, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-hidden", PSK: "labpassword", Hidden: true}, wifiJoinTimeout)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Logf("connect to completed in %s: %+v", time.Since(start).Round(time.Millisecond), st)
	if st.SSID != "lab-hidden" {
		t.Errorf("status = %+v; want lab-hidden", st)
	}
}

func testWiFiNotFound(t *testing.T, l *wifiLab) {
	start := time.Now()
	_, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-nowhere", PSK: "labpassword"}, wifiJoinTimeout)
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Connect to an absent network = %v; want %q", err, "network not found")
	}
}

// testWiFiRejected: an AP whose MAC filter lets no station in refuses the
// authentication with a status code.
func testWiFiRejected(t *testing.T, l *wifiLab) {
	accept := filepath.Join(t.TempDir(), "accept")
	os.WriteFile(accept, nil, 0o644)
	guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-acl", Security: guest.APWPA2, Passphrase: "labpassword",
		Name: "hostapd-acl", Extra: []string{"macaddr_acl=1", "accept_mac_file=" + accept}})
	l.forgetAtEnd(t, "lab-acl")
	// The test is about the refusal: it first waits until the new AP is
	// seen on its channel.
	waitSeen(t, l, "lab-acl", 30*time.Second)
	start := time.Now()
	_, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-acl", PSK: "labpassword"}, wifiJoinTimeout)
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "rejected by AP") {
		t.Fatalf("Connect to an AP that refuses the station = %v; want %q", err, "rejected by AP")
	}
}

// testWiFiRejoin: a saved network is disabled by a later Connect
// (SelectNetwork); when that link drops, the client re-enables the saved
// ones and wpa_supplicant joins the saved network once its AP is up.
func testWiFiRejoin(t *testing.T, l *wifiLab) {
	if err := l.wifi.SetSaved(context.Background(), []Network{{SSID: "lab-saved", PSK: "savedpassword", Priority: 10}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.wifi.SetSaved(context.Background(), nil) })
	other := guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-other", Security: guest.APWPA2, Passphrase: "labpassword", Name: "hostapd-other"})
	l.forgetAtEnd(t, "lab-other")
	if _, err := l.wifi.Connect(context.Background(), Network{SSID: "lab-other", PSK: "labpassword"}, wifiJoinTimeout); err != nil {
		t.Fatal(err)
	}
	mark := l.mark()
	other.Stop()
	start := time.Now()
	drop := l.waitEvent(t, mark, 20*time.Second, "dropped", func(e Event) bool { return e.Kind == "dropped" })
	t.Logf("drop seen in %s: %+v", time.Since(start).Round(time.Millisecond), drop)
	l.waitEvent(t, mark, 10*time.Second, "rejoin", func(e Event) bool { return e.Kind == "rejoin" })
	mark = l.mark()
	guest.StartHostapd(t, guest.HostapdConfig{Interface: l.ap, SSID: "lab-saved", Security: guest.APWPA2, Passphrase: "savedpassword", Name: "hostapd-saved"})
	start = time.Now()
	l.waitEvent(t, mark, 40*time.Second, "completed on lab-saved", func(e Event) bool {
		return e.Kind == "state" && e.State == StateCompleted && e.SSID == "lab-saved"
	})
	t.Logf("saved network joined %s after its AP came up: %+v", time.Since(start).Round(time.Millisecond), l.wifi.Status())
}
