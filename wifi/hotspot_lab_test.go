//go:build lab

package wifi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/deploy/vm/guest/inproc"
	"github.com/boxagent/boxagent/wifi"
)

// TestHotspotLab boots the virtual board and runs TestHotspotGuest in it.
func TestHotspotLab(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side: boots the virtual board")
	}
	vm.RunGoTests(t, "./wifi", vm.Options{Timeout: 7 * time.Minute}, wifi.GuestRun("^TestHotspotGuest")...)
}

// TestHotspotGuest is the first-time setup of a box over its hotspot,
// on three mac80211_hwsim radios: hostapd is the home AP (with dnsmasq
// behind it) on the first; the agent's wpa_supplicant drives the
// second; a second wpa_supplicant, the "phone", has the third in its
// own network namespace. The agent knows no network, so it opens the
// hotspot after setup_after; the phone joins it with the printed
// password, gets an address from the agent's DHCP server, is sent to
// the setup page by a captive-portal probe, tries a wrong password (the
// hotspot comes back and says why), then the right one: the agent joins
// the home AP, gets an address there and saves the network in its
// config file.
func TestHotspotGuest(t *testing.T) {
	vm.RequireGuest(t)
	radios := guest.Hwsim(t, 3)
	ap, sta, phoneIf := radios[0], radios[1], radios[2]
	phoneNS := guest.NewNetns(t, "phone")
	guest.MovePhy(t, phoneIf, phoneNS)
	bus := guest.StartSystemBus(t)
	guest.StartWpaSupplicant(t, bus)
	guest.StartHostapd(t, guest.HostapdConfig{Interface: ap, SSID: "lab-home", Security: guest.APWPA2, Passphrase: "homepassword"})
	guest.InitNS.Addr(t, ap, "10.79.0.1/24")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{Interface: ap, Range: "10.79.0.100,10.79.0.150,255.255.255.0,1h", NoPing: true})

	socket, logPath, stopAgent := inproc.StartAgent(t, "setup", `board = "auto"
# the box's first boot: no network known yet
[wifi]
interface = "`+sta+`"
setup_after = "5s"
`)
	defer stopAgent()
	root := filepath.Dir(filepath.Dir(filepath.Dir(socket)))
	cfgPath := filepath.Join(root, "etc/boxagent/config.toml")
	ctx := context.Background()
	c := client.New(socket, "cli")
	agentLog := func() string { b, _ := os.ReadFile(logPath); return wifiTail(string(b), 60) }

	// The hotspot opens by itself.
	waitSetupEvent(t, c, "up", 1, 90*time.Second, agentLog)
	var out, errb bytes.Buffer
	e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := cli.Run(ctx, e, []string{"wifi", "setup", "status", "--socket", socket}); code != 0 {
		t.Fatalf("wifi setup status: exit %d: %s", code, errb.String())
	}
	t.Logf("boxagent wifi setup status:\n%s", out.String())
	st, err := c.WiFiSetup(ctx)
	if err != nil || st.State != "on" || !strings.HasPrefix(st.SSID, "boxagent-") || len(st.Password) < 10 {
		t.Fatalf("setup status %+v, %v", st, err)
	}
	if !strings.Contains(out.String(), st.Password) {
		t.Errorf("the CLI does not print the password")
	}
	if b, _ := os.ReadFile(logPath); !bytes.Contains(b, []byte("Wi-Fi setup hotspot is up")) || !bytes.Contains(b, []byte(st.Password)) {
		t.Errorf("the console (agent log) does not show the hotspot's password")
	}

	// The phone joins the hotspot and gets an address from the agent.
	phone := guest.StartPhone(t, phoneNS, phoneIf, st.SSID, st.Password, wifi.HotspotFrequency)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := phone.WaitConnected(wctx, 1); err != nil {
		t.Fatalf("the phone did not join the hotspot: %v\n%s\nagent:\n%s", err, phone.LogTail(20), agentLog())
	}
	addr := phone.DHCP(t)
	t.Logf("the phone has %s from the agent's DHCP server", addr)
	if !strings.HasPrefix(addr, "192.168.4.") {
		t.Errorf("phone address %s", addr)
	}

	// Any address on port 80 answers as the box: a captive-portal probe
	// is redirected to the setup page.
	hc := &http.Client{
		Transport:     &http.Transport{DialContext: dialInNS("phone", "192.168.4.1:80"), DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}
	resp, err := hc.Get("http://connectivitycheck.gstatic.com/generate_204")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	t.Logf("GET /generate_204: %s, Location %s", resp.Status, loc)
	if resp.StatusCode != http.StatusFound || loc != "http://192.168.4.1/setup.html" {
		t.Errorf("captive probe: %s to %q", resp.Status, loc)
	}
	page := httpText(t, hc, "GET", loc, "")
	if !strings.Contains(page, "setup.js") {
		t.Errorf("setup page:\n%s", page)
	}
	nets := httpText(t, hc, "GET", "http://192.168.4.1/setup/networks", "")
	t.Logf("GET /setup/networks: %s", nets)
	if !strings.Contains(nets, `"ssid":"lab-home"`) {
		t.Errorf("the setup page does not offer lab-home")
	}
	// The rest of the API is not there.
	resp, err = hc.Get("http://192.168.4.1/api/v1/wifi")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Errorf("GET /api/v1/wifi on the hotspot: %s", resp.Status)
		}
	}

	// A wrong password: the agent leaves AP mode, fails, and the hotspot
	// comes back with the reason for the page.
	connectBody := func(psk string) string {
		b, _ := json.Marshal(map[string]string{"ssid": "lab-home", "password": psk})
		return string(b)
	}
	httpText(t, hc, "POST", "http://192.168.4.1/setup/connect", connectBody("wrong-password"))
	waitSetupEvent(t, c, "up", 2, 120*time.Second, agentLog)
	wctx2, cancel2 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel2()
	if err := phone.WaitConnected(wctx2, 2); err != nil {
		t.Fatalf("the phone did not re-join the hotspot: %v\n%s", err, phone.LogTail(20))
	}
	status := httpText(t, hc, "GET", "http://192.168.4.1/setup/status", "")
	t.Logf("GET /setup/status after the wrong password: %s", status)
	if !strings.Contains(status, "wifi.wrong_password") {
		t.Errorf("the page is not told the password was wrong: %s", status)
	}
	if b, _ := os.ReadFile(cfgPath); bytes.Contains(b, []byte("lab-home")) {
		t.Errorf("a network that did not join was saved:\n%s", b)
	}

	// The right one: the hotspot goes, the box joins lab-home and gets an
	// address from dnsmasq there.
	start := time.Now()
	httpText(t, hc, "POST", "http://192.168.4.1/setup/connect", connectBody("homepassword"))
	evCtx, evCancel := context.WithTimeout(ctx, 90*time.Second)
	defer evCancel()
	var bound string
	err = c.EventsSince(evCtx, 0, func(ev localapi.Event) error {
		if ev.Type == "wifi.dhcp" && ev.Time.After(start) && strings.Contains(string(ev.Data), `"state":"bound"`) {
			bound = string(ev.Data)
			return client.ErrStop
		}
		return nil
	})
	if bound == "" {
		t.Fatalf("no address on lab-home after the setup page's connect: %v\nagent:\n%s", err, agentLog())
	}
	t.Logf("setup page connect to address: %s", time.Since(start).Round(time.Millisecond))
	ws, err := c.WiFiStatus(ctx)
	if err != nil || ws.State != wifi.StateCompleted || ws.SSID != "lab-home" || !strings.HasPrefix(ws.Address, "10.79.0.") {
		t.Errorf("wifi status %+v, %v", ws, err)
	}
	if st, _ := c.WiFiSetup(ctx); st.State != "off" {
		t.Errorf("setup state %+v after the join", st)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil || !bytes.Contains(b, []byte("ssid = 'lab-home'")) || !bytes.Contains(b, []byte("homepassword")) ||
		!bytes.Contains(b, []byte("# the box's first boot")) {
		t.Errorf("config file after the join (%v):\n%s", err, b)
	}
	if fi, err := os.Stat(cfgPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v, %v", fi.Mode(), err)
	}
	// The PSK is in the file only: not in the API, not in the log.
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	for _, path := range []string{"/api/v1/wifi", "/api/v1/operations?kind=wifi.connect", "/api/v1/wifi/setup"} {
		raw := httpText(t, uc, "GET", "http://boxagent"+path, "")
		if strings.Contains(raw, "homepassword") || strings.Contains(raw, "wrong-password") {
			t.Errorf("GET %s shows a PSK: %s", path, raw)
		}
	}
	if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("homepassword")) || bytes.Contains(b, []byte("wrong-password")) {
		t.Errorf("the agent logged a PSK")
	}

	// By hand, from the console: setup start prints the password; setup
	// stop lets the saved network join again.
	out.Reset()
	errb.Reset()
	start = time.Now()
	if code := cli.Run(ctx, e, []string{"wifi", "setup", "start", "--socket", socket}); code != 0 {
		t.Fatalf("wifi setup start: exit %d: %s%s", code, out.String(), errb.String())
	}
	opened := time.Since(start)
	t.Logf("boxagent wifi setup start (%s):\n%s", opened.Round(time.Millisecond), out.String())
	if !strings.Contains(out.String(), st.Password) || !strings.Contains(out.String(), "http://192.168.4.1/") {
		t.Errorf("wifi setup start does not print the password and the page")
	}
	start = time.Now()
	if code := cli.Run(ctx, e, []string{"wifi", "setup", "stop", "--socket", socket}); code != 0 {
		t.Fatalf("wifi setup stop: exit %d: %s", code, errb.String())
	}
	evCtx3, evCancel3 := context.WithTimeout(ctx, 60*time.Second)
	defer evCancel3()
	var rejoined time.Duration
	c.EventsSince(evCtx3, 0, func(ev localapi.Event) error {
		if ev.Type == "wifi.dhcp" && ev.Time.After(start) && strings.Contains(string(ev.Data), `"state":"bound"`) {
			rejoined = ev.Time.Sub(start)
			return client.ErrStop
		}
		return nil
	})
	if rejoined == 0 {
		t.Errorf("no address on lab-home after wifi setup stop\nagent:\n%s", agentLog())
	}
	t.Logf("BENCHMARK wifi setup start (scan + AP up + DHCP/DNS/page): %s; wifi setup stop to an address on the saved network: %s",
		opened.Round(time.Millisecond), rejoined.Round(time.Millisecond))
	// The AP's own part of it (SelectNetwork to beaconing), as the agent
	// measured it, each time the hotspot opened.
	if b, err := os.ReadFile(logPath); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `msg="access point up"`) {
				t.Logf("BENCHMARK agent: %s", l)
			}
		}
	}
}

// waitSetupEvent waits for the n-th wifi.setup event of kind.
func waitSetupEvent(t *testing.T, c *client.Client, kind string, n int, timeout time.Duration, agentLog func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := 0
	err := c.EventsSince(ctx, 0, func(ev localapi.Event) error {
		if ev.Type == "wifi.setup" && strings.Contains(string(ev.Data), `"kind":"`+kind+`"`) {
			if seen++; seen == n {
				return client.ErrStop
			}
		}
		return nil
	})
	if seen < n {
		t.Fatalf("no wifi.setup %q event #%d: %v\nagent:\n%s", kind, n, err, agentLog())
	}
}

// dialInNS dials to in network namespace ns, whatever address was
// asked: the phone's own name resolution would give the box's address
// for every name.
func dialInNS(ns, to string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			// The socket keeps the namespace it was made in. The thread
			// goes back before it is unlocked: one left in ns that is
			// the main thread is parked, not ended, and then `ip netns
			// pids` names this test binary (the clean-up kills it).
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				runtime.UnlockOSThread()
				done <- result{nil, err}
				return
			}
			defer orig.Close()
			h, err := netns.GetFromName(ns)
			if err != nil {
				runtime.UnlockOSThread()
				done <- result{nil, err}
				return
			}
			defer h.Close()
			if err := netns.Set(h); err != nil {
				runtime.UnlockOSThread()
				done <- result{nil, err}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", to)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			done <- result{c, err}
		}()
		r := <-done
		return r.c, r.err
	}
}

// httpText does one request and returns the body; it fails t unless the
// answer is 2xx.
func httpText(t *testing.T, hc *http.Client, method, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	return string(b)
}
