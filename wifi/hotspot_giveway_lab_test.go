//go:build lab

package wifi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/deploy/vm/guest/inproc"
	"github.com/boxagent/boxagent/wifi"
)

// TestHotspotGuestGiveWay is the power cut where the box comes back
// before the home router: the agent knows lab-home, cannot see it, and
// opens the setup hotspot after setup_after; a second interface on its
// radio keeps looking for lab-home on wpa_supplicant's own schedule.
// The router comes back (hostapd starts): the hotspot closes by itself,
// the box joins lab-home and gets an address there, the journal says
// why, and the watch's interface is gone.
func TestHotspotGuestGiveWay(t *testing.T) {
	vm.RequireGuest(t)
	radios := guest.Hwsim(t, 2)
	ap, sta := radios[0], radios[1]
	bus := guest.StartSystemBus(t)
	guest.StartWpaSupplicant(t, bus)
	socket, logPath, stopAgent := inproc.StartAgent(t, "giveway", `board = "auto"
[wifi]
interface = "`+sta+`"
setup_after = "5s"
[[wifi.network]]
ssid = "lab-home"
psk = "homepassword"
`)
	defer stopAgent()
	ctx := context.Background()
	c := client.New(socket, "cli")
	agentLog := func() string { b, _ := os.ReadFile(logPath); return wifiTail(string(b), 80) }

	// Router down: the hotspot opens, and the watch beside it.
	waitSetupEvent(t, c, "up", 1, 90*time.Second, agentLog)
	scanIf := wifi.GiveWayIfname(sta)
	if _, err := netlink.LinkByName(scanIf); err != nil {
		t.Fatalf("no watch interface %s beside the hotspot: %v\nagent:\n%s", scanIf, err, agentLog())
	}
	out, _ := exec.Command("iw", "dev").CombinedOutput()
	t.Logf("iw dev with the hotspot up:\n%s", out)
	if st, err := c.WiFiSetup(ctx); err != nil || st.State != "on" || !st.Auto || !slices.Equal(st.WatchesFor, []string{"lab-home"}) {
		t.Fatalf("setup status %+v, %v", st, err)
	}
	// A reload that adds a saved network: the watch follows it.
	cfgPath := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(socket))), "etc/boxagent/config.toml")
	cfgText, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfgText = append(cfgText, "[[wifi.network]]\nssid = \"lab-office\"\npsk = \"officepassword\"\n"...)
	if err := os.WriteFile(cfgPath, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	if op, err := c.ReloadConfig(ctx); err != nil || op.Error != nil {
		t.Fatalf("reload: %+v, %v", op, err)
	}
	if st, err := c.WiFiSetup(ctx); err != nil || st.State != "on" || !slices.Equal(st.WatchesFor, []string{"lab-home", "lab-office"}) {
		t.Fatalf("setup status after the reload %+v, %v\nagent:\n%s", st, err, agentLog())
	}
	var out2, errb bytes.Buffer
	e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out2, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := cli.Run(ctx, e, []string{"wifi", "setup", "status", "--socket", socket}); code != 0 || !strings.Contains(out2.String(), "gives way to:") {
		t.Errorf("wifi setup status: exit %d: %s%s", code, out2.String(), errb.String())
	}
	t.Logf("boxagent wifi setup status:\n%s", out2.String())
	// wpa_supplicant scans on the watch's interface by itself (followed
	// here by its ScanDone signals on a connection of the test's own);
	// two scans find nothing and the hotspot stays.
	conn, err := dbus.Connect(bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	scans := make(chan time.Time, 16)
	watch, err := wifi.Open(ctx, conn, wifi.Options{Interface: scanIf, OnEvent: func(e wifi.Event) {
		if e.Kind == "scan" {
			select {
			case scans <- time.Now():
			default:
			}
		}
	}})
	if err != nil {
		t.Fatalf("cannot follow the watch interface: %v", err)
	}
	var last time.Time
	for i := range 2 {
		select {
		case at := <-scans:
			if i > 0 {
				t.Logf("the watch's scans %s apart, by wpa_supplicant's own schedule", at.Sub(last).Round(time.Millisecond))
			}
			last = at
		case <-time.After(60 * time.Second):
			t.Fatalf("no scan on %s within 60s\nagent:\n%s", scanIf, agentLog())
		}
	}
	watch.Close()
	if st, _ := c.WiFiSetup(ctx); st.State != "on" {
		t.Fatalf("the hotspot closed with the router still down: %+v\nagent:\n%s", st, agentLog())
	}

	// The router comes back.
	guest.StartHostapd(t, guest.HostapdConfig{Interface: ap, SSID: "lab-home", Security: guest.APWPA2, Passphrase: "homepassword"})
	back := time.Now()
	guest.InitNS.Addr(t, ap, "10.79.1.1/24")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{Interface: ap, Range: "10.79.1.100,10.79.1.150,255.255.255.0,1h", NoPing: true})
	evCtx, evCancel := context.WithTimeout(ctx, 120*time.Second)
	defer evCancel()
	var gaveWay, joined, bound time.Duration
	err = c.EventsSince(evCtx, 0, func(ev localapi.Event) error {
		if ev.Time.Before(back) {
			return nil
		}
		switch {
		case ev.Type == "wifi.setup" && strings.Contains(string(ev.Data), `"kind":"give-way"`) && gaveWay == 0:
			gaveWay = ev.Time.Sub(back)
		case ev.Type == "wifi" && joined == 0:
			var e wifi.Event
			if json.Unmarshal(ev.Data, &e) == nil && e.Kind == "state" && e.State == wifi.StateCompleted && e.SSID == "lab-home" {
				joined = ev.Time.Sub(back)
			}
		case ev.Type == "wifi.dhcp" && strings.Contains(string(ev.Data), `"state":"bound"`):
			bound = ev.Time.Sub(back)
			return client.ErrStop
		}
		return nil
	})
	if bound == 0 {
		t.Fatalf("the box did not join lab-home with an address after the router came back (give-way %s, joined %s): %v\nagent:\n%s",
			gaveWay, joined, err, agentLog())
	}
	t.Logf("BENCHMARK router back -> hotspot gives way %s, joined lab-home %s, address %s",
		gaveWay.Round(time.Millisecond), joined.Round(time.Millisecond), bound.Round(time.Millisecond))
	if gaveWay == 0 || joined == 0 {
		t.Errorf("events: give-way after %s, completed on lab-home after %s", gaveWay, joined)
	}
	if st, err := c.WiFiSetup(ctx); err != nil || st.State != "off" {
		t.Errorf("setup status after the give-way: %+v, %v", st, err)
	}
	if ws, err := c.WiFiStatus(ctx); err != nil || ws.State != wifi.StateCompleted || ws.SSID != "lab-home" || !strings.HasPrefix(ws.Address, "10.79.1.") {
		t.Errorf("wifi status %+v, %v", ws, err)
	}
	if _, err := netlink.LinkByName(scanIf); err == nil {
		t.Errorf("the watch interface %s outlived the hotspot", scanIf)
	}
	// The journal says why the hotspot closed.
	ops, err := c.Operations(ctx, journal.Query{Kind: "wifi.setup.stop"})
	if err != nil || len(ops) != 1 {
		t.Fatalf("journal wifi.setup.stop: %+v, %v", ops, err)
	}
	t.Logf("journal: %s %s %s: %s", ops[0].Kind, ops[0].Origin, ops[0].State, ops[0].Summary)
	if ops[0].Origin != journal.OriginAuto || !strings.Contains(ops[0].Summary, `saved network "lab-home" is in range again`) {
		t.Errorf("journalled %+v", ops[0])
	}

	// Opened by hand, with lab-home in range, the hotspot watches for
	// nothing: someone wants to change networks.
	if _, _, err := c.WiFiSetupStart(ctx); err != nil {
		t.Fatalf("wifi setup start: %v", err)
	}
	st, err := c.WiFiSetup(ctx)
	if err != nil || st.State != "on" || st.Auto || len(st.WatchesFor) != 0 {
		t.Errorf("setup status of a hotspot opened by hand: %+v, %v", st, err)
	}
	if _, err := netlink.LinkByName(scanIf); err == nil {
		t.Errorf("a hotspot opened by hand has a watch interface %s", scanIf)
	}
	if _, _, err := c.WiFiSetupStop(ctx); err != nil {
		t.Errorf("wifi setup stop: %v", err)
	}
}

// TestHotspotGuestGiveWayBackoff: lab-home is in range but its password
// changed, so the agent's saved one no longer joins. The hotspot opens
// after setup_after and gives way to lab-home; the join fails and the
// hotspot opens again, and from then on it holds before it looks for
// lab-home again, setup_after and then twice that, so it does not close
// under a phone every few seconds. `wifi setup status` says until when.
func TestHotspotGuestGiveWayBackoff(t *testing.T) {
	vm.RequireGuest(t)
	radios := guest.Hwsim(t, 2)
	ap, sta := radios[0], radios[1]
	bus := guest.StartSystemBus(t)
	guest.StartWpaSupplicant(t, bus)
	guest.StartHostapd(t, guest.HostapdConfig{Interface: ap, SSID: "lab-home", Security: guest.APWPA2, Passphrase: "newpassword"})
	const setupAfter = 5 * time.Second
	socket, logPath, stopAgent := inproc.StartAgent(t, "backoff", `board = "auto"
[wifi]
interface = "`+sta+`"
setup_after = "5s"
[[wifi.network]]
ssid = "lab-home"
psk = "oldpassword"
`)
	defer stopAgent()
	ctx := context.Background()
	c := client.New(socket, "cli")
	agentLog := func() string { b, _ := os.ReadFile(logPath); return wifiTail(string(b), 80) }

	// Each opening's status, read at its "up" event: the hold is armed
	// before the event is sent.
	type opening struct {
		at      time.Time
		st      wifi.SetupStatus
		gaveWay time.Time
	}
	var opens []opening
	evCtx, cancel := context.WithTimeout(ctx, 150*time.Second)
	defer cancel()
	err := c.EventsSince(evCtx, 0, func(ev localapi.Event) error {
		if ev.Type != "wifi.setup" {
			return nil
		}
		switch {
		case strings.Contains(string(ev.Data), `"kind":"up"`):
			st, err := c.WiFiSetup(ctx)
			if err != nil {
				return err
			}
			opens = append(opens, opening{at: ev.Time, st: st})
			if len(opens) == 3 {
				var out, errb bytes.Buffer
				e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
				cli.Run(ctx, e, []string{"wifi", "setup", "status", "--socket", socket})
				t.Logf("boxagent wifi setup status, the third opening:\n%s%s", out.String(), errb.String())
				if !strings.Contains(out.String(), "holds until:") || !strings.Contains(out.String(), "the last 2 give-ways did not join") {
					t.Errorf("wifi setup status does not say the hotspot holds:\n%s", out.String())
				}
			}
		case strings.Contains(string(ev.Data), `"kind":"give-way"`) && len(opens) > 0:
			opens[len(opens)-1].gaveWay = ev.Time
			if len(opens) == 3 {
				return client.ErrStop
			}
		}
		return nil
	})
	if len(opens) < 3 || opens[2].gaveWay.IsZero() {
		t.Fatalf("%d openings of the hotspot, want 3 that gave way: %+v, %v\nagent:\n%s", len(opens), opens, err, agentLog())
	}
	for i, o := range opens {
		wantHold := []time.Duration{0, setupAfter, 2 * setupAfter}[i]
		held := o.gaveWay.Sub(o.at)
		t.Logf("opening %d: gave way after %s (hold %s, status %+v)", i+1, held.Round(time.Millisecond), wantHold, o.st)
		if wantHold == 0 {
			if o.st.HoldsUntil != nil {
				t.Errorf("the first opening holds: %+v", o.st)
			}
			continue
		}
		if o.st.HoldsUntil == nil || o.st.GaveWay != i {
			t.Errorf("opening %d: status %+v, want a hold after %d give-ways", i+1, o.st, i)
			continue
		}
		if d := o.st.HoldsUntil.Sub(o.at); d < wantHold-time.Second || d > wantHold+2*time.Second {
			t.Errorf("opening %d holds until %s after it opened, want %s", i+1, d, wantHold)
		}
		if held < wantHold-time.Second {
			t.Errorf("opening %d gave way after %s, before its hold of %s ended", i+1, held, wantHold)
		}
	}
	ops, err := c.Operations(ctx, journal.Query{Kind: "wifi.setup.stop"})
	if err != nil || len(ops) < 3 {
		t.Errorf("journal wifi.setup.stop: %d records, %v", len(ops), err)
	}
}
