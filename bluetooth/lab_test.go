//go:build lab

package bluetooth

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestLabBluetooth boots the virtual board and runs the guest tests below
// in it: real bluetoothd, two btvirt controllers (hci0 is the box, hci1
// stands for the headset), real PulseAudio.
func TestLabBluetooth(t *testing.T) {
	// The fixture's diagnostic knobs cross into the guest:
	// LAB_BT_TRACE=1 (the shim logs every vhci packet), LAB_BT_NOSHIM=1,
	// LAB_BT_DEBUG=1 (bluetoothd -d).
	env := map[string]string{}
	for _, k := range []string{"LAB_BT_TRACE", "LAB_BT_NOSHIM", "LAB_BT_DEBUG"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	vm.RunGoTests(t, "./bluetooth", vm.Options{Timeout: 4 * time.Minute, Env: env}, "-test.run=^TestGuest")
}

// labRig is what every guest step needs.
type labRig struct {
	z    *guest.BlueZ
	pa   *guest.BluetoothPulse
	conn *dbus.Conn // the agent's connection
	raw  *dbus.Conn // the test's own, for what the headset side does
	c    *Client
	ev   *events
	ctx  context.Context
}

func startLabRig(t *testing.T) *labRig {
	vm.RequireGuest(t)
	r := &labRig{ev: newEvents(), ctx: context.Background()}
	// The agent starts first, as on a box where boxagent is up before the
	// radio's driver and bluetoothd: the model must fill from
	// NameOwnerChanged and the adapters' InterfacesAdded, not from a
	// GetManagedObjects at start.
	r.z = &guest.BlueZ{Bus: guest.StartSystemBus(t)}
	var err error
	if r.conn, err = dbus.Connect(r.z.Bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.conn.Close() })
	if r.raw, err = dbus.Connect(r.z.Bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.raw.Close() })
	logf, err := os.Create(guest.LogDir(t) + "/boxagent-bluetooth.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	r.c = New(r.conn, Options{
		Config: labConfig(false), OnEvent: r.ev.add, BackoffMin: 2 * time.Second, BackoffMax: 8 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logf, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.c.Close)
	if ads, err := r.c.Adapters(); err == nil {
		t.Fatalf("adapters before bluetoothd started: %+v", ads)
	}
	r.z.Btvirt = guest.StartBtvirt(t)
	r.z.Bluetoothd = guest.StartBluetoothd(t, r.z.Bus)
	waitLong(t, r.ev, 0, 30*time.Second, "the late adapters in the model and the agent registered", func(Event) bool {
		ads, _ := r.c.Adapters()
		return r.c.AgentRegistered() && len(ads) == 2
	})
	// PulseAudio before pairing: its endpoints put the A2DP and HSP UUIDs
	// into the headset side's SDP record.
	r.pa = guest.StartBluetoothPulse(t)
	return r
}

// labConfig is the box's config. One bluetoothd and one default agent
// (ours) serve both controllers, so the agent also answers for the
// "headset": a real headset accepts its paired host's connections by
// itself, which the allow-listed board address stands for here. With
// auto, the headset is a known auto_connect headset.
func labConfig(auto bool) Config {
	c := Config{Adapter: "hci0", Headsets: []Headset{{Address: guest.BtvirtAddr0, Name: "the board, as the headset knows it"}}}
	if auto {
		c.Headsets = append([]Headset{{Address: guest.BtvirtAddr1, AutoConnect: true}}, c.Headsets...)
	}
	return c
}

// step runs one timed step; the rest of the test stops at the first that
// fails, so the log shows exactly where BlueZ stopped.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, f)
	t.Logf("step %-28s %s (%s)", name, map[bool]string{true: "ok", false: "FAILED"}[ok], time.Since(start).Round(10*time.Millisecond))
	if !ok {
		t.FailNow()
	}
}

func (r *labRig) rawCall(t *testing.T, timeout time.Duration, path dbus.ObjectPath, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.raw.Object(busName, path).CallWithContext(ctx, method, 0, args...).Err
}

// cards follows `pactl subscribe` for card events.
func (r *labRig) cardEvents(t *testing.T) <-chan string {
	cmd := exec.Command("pactl", "subscribe")
	cmd.Env = append(os.Environ(), "PULSE_SERVER="+r.pa.Native)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	guest.Start(t, "pactl-subscribe", cmd)
	ch := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "on card") {
				select {
				case ch <- sc.Text():
				default:
				}
			}
		}
	}()
	return ch
}

const headsetCard = "bluez_card.00_AA_01_01_00_01"

func TestGuestHeadsetLifecycle(t *testing.T) {
	r := startLabRig(t)
	outer := t // fixtures that must outlive a step belong to the whole test
	start := time.Now()

	step(t, "power", func(t *testing.T) {
		for _, a := range []string{"hci0", "hci1"} {
			if ad, err := r.c.SetPowered(r.ctx, a, true); err != nil || !ad.Powered {
				t.Fatalf("power %s: %+v, %v", a, ad, err)
			}
		}
		// The headset is put in pairing mode.
		if _, err := r.c.SetPairable(r.ctx, "hci1", true, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := r.c.SetDiscoverable(r.ctx, "hci1", true, 0); err != nil {
			t.Fatal(err)
		}
	})

	var scanned Device
	step(t, "scan", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		defer cancel()
		ds, err := r.c.Scan(ctx, ScanOptions{Duration: 30 * time.Second}, func(d Device) {
			t.Logf("found %s %q class %#x icon %q rssi %v a2dp_sink %v hfp_hf %v hsp_hs %v", d.Address, d.DisplayName(), d.Class, d.Icon, rssiOr(d.RSSI), d.A2DPSink, d.HFPHF, d.HSPHS)
			if d.Address == guest.BtvirtAddr1 {
				cancel()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Address == guest.BtvirtAddr1 {
				scanned = d
			}
		}
		if scanned.Address == "" {
			t.Fatalf("scan from hci0 did not find hci1 (%s): %+v", guest.BtvirtAddr1, ds)
		}
		if ad, _ := r.c.AdapterByName("hci0"); ad.Discovering {
			t.Error("hci0 still discovering after the scan")
		}
	})

	step(t, "pair trust connect", func(t *testing.T) {
		cards := r.cardEvents(t)
		var steps []string
		t0 := time.Now()
		d, err := r.c.Pair(r.ctx, guest.BtvirtAddr1, func(s string) {
			steps = append(steps, s+" at "+time.Since(t0).Round(10*time.Millisecond).String())
		})
		t.Logf("progress: %s", strings.Join(steps, "; "))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Paired || !d.Trusted || !d.Connected {
			t.Fatalf("after Pair: %+v", d)
		}
		t.Logf("bench bt-pair: boxagent pair to Connected %s; UUIDs %v", time.Since(t0).Round(10*time.Millisecond), d.UUIDs)
		if !d.A2DPSink {
			t.Errorf("the headset side offers no A2DP sink: %v", d.UUIDs)
		}
		select {
		case line := <-cards:
			t.Logf("pulseaudio: %s", line)
		case <-time.After(30 * time.Second):
			t.Error("PulseAudio made no card in 30 s")
		}
		out := r.pa.Pactl(t, "list", "cards")
		if !strings.Contains(out, headsetCard) || !strings.Contains(out, "a2dp_sink") {
			t.Errorf("pactl list cards has no %s with a2dp_sink:\n%s", headsetCard, out)
		}
	})

	step(t, "disconnect", func(t *testing.T) {
		d, err := r.c.Disconnect(r.ctx, guest.BtvirtAddr1)
		if err != nil || d.Connected {
			t.Fatalf("Disconnect: %+v, %v", d, err)
		}
	})

	step(t, "bluetoothd restart", func(t *testing.T) {
		mark := r.ev.mark()
		r.z.Bluetoothd = r.z.Bluetoothd.Restart(outer, r.z.Bus)
		// bluetoothd takes its name before it lists the adapters: the
		// model fills from the InterfacesAdded that follow.
		waitLong(t, r.ev, mark, 20*time.Second, "agent registered and model rebuilt", func(Event) bool {
			ads, _ := r.c.Adapters()
			d, err := r.c.Device(guest.BtvirtAddr1)
			return r.c.AgentRegistered() && len(ads) == 2 && err == nil && d.Paired
		})
	})

	// After the steps whose state it would change, before the controllers
	// reset: after that hci1 may be the first adapter, which
	// non-interactive bluetoothctl takes as its controller.
	step(t, "pair again: bluetoothctl (peer), then boxagent", func(t *testing.T) {
		r.peerPairBluetoothctl(t)
	})
	step(t, "controllers reset", func(t *testing.T) {
		// The radio's driver resets under a running bluetoothd: the
		// adapters leave the model (InterfacesRemoved) and come back
		// (InterfacesAdded), with the paired headset.
		mark := r.ev.mark()
		r.z.ResetControllers(outer)
		r.ev.waitFrom(t, mark, "hci0 removed", func(e Event) bool { return e.Type == EventAdapterRemoved && e.Adapter.Name == "hci0" })
		waitLong(t, r.ev, mark, 30*time.Second, "both adapters back with the paired headset", func(Event) bool {
			ads, _ := r.c.Adapters()
			d, err := r.c.Device(guest.BtvirtAddr1)
			return len(ads) == 2 && err == nil && d.Paired
		})
	})
	t.Logf("whole lifecycle: %s", time.Since(start).Round(10*time.Millisecond))
}

// TestGuestHeadsetReconnect: a known auto_connect headset that drops the
// link by itself is connected again by the agent. A test of its own, on a
// fresh bluetoothd, after the lifecycle: run as a step of the lifecycle
// (before its bluetoothd restart), the drop and reconnect left BlueZ
// 5.66's bluetoothd to segfault in the lifecycle's later pairing, 3 runs
// of 3 (with the headset disconnected and auto_connect off again between).
func TestGuestHeadsetReconnect(t *testing.T) {
	vm.RequireGuest(t)
	// The lifecycle's pairings must not carry over: /var/lib/bluetooth is
	// the boot's tmpfs.
	ents, _ := os.ReadDir("/var/lib/bluetooth")
	for _, e := range ents {
		os.RemoveAll(filepath.Join("/var/lib/bluetooth", e.Name()))
	}
	r := startLabRig(t)
	step(t, "pair", func(t *testing.T) {
		r.headsetPairingMode(t)
		r.find(t)
		if d, err := r.c.Pair(r.ctx, guest.BtvirtAddr1, nil); err != nil || !d.Connected {
			t.Fatalf("Pair: %+v, %v", d, err)
		}
	})
	step(t, "reconnect after the headset drops the link", func(t *testing.T) {
		// Now a known auto_connect headset.
		if err := r.c.SetConfig(r.ctx, labConfig(true)); err != nil {
			t.Fatal(err)
		}
		// The headset is switched off: its controller ends the link
		// with "remote device terminated connection due to power off"
		// (0x15), an HCI Disconnect on hci1 behind bluetoothd's back.
		// (Powering hci1 off through bluetoothd, closer still, kills
		// BlueZ 5.66's bluetoothd under btvirt: NoReply with a live
		// connection.)
		mark := r.ev.mark()
		t0 := time.Now()
		if out, err := exec.Command("hcitool", "-i", "hci1", "dc", guest.BtvirtAddr0, "21").CombinedOutput(); err != nil {
			t.Fatalf("hcitool -i hci1 dc %s: %v: %s", guest.BtvirtAddr0, err, out)
		}
		waitLong(t, r.ev, mark, 20*time.Second, "link loss seen", isDevice(guest.BtvirtAddr1, func(d Device) bool { return !d.Connected }))
		defer func() {
			d, err := r.c.Device(guest.BtvirtAddr1)
			t.Logf("headset now: %+v, %v; reconnect state %+v", d, err, r.c.ReconnectState())
		}()
		// The agent's own attempt, not BlueZ's (which reconnects only
		// after a link timeout): EventReconnect is reported only when
		// the reconnector's Connect succeeded.
		ev := waitLong(t, r.ev, mark, 60*time.Second, "reconnected by the agent", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
		if d, err := r.c.Device(guest.BtvirtAddr1); err != nil || !d.Connected {
			t.Fatalf("after the agent's reconnect: %+v, %v", d, err)
		}
		t.Logf("reconnected %s after the headset dropped the link: %s", time.Since(t0).Round(10*time.Millisecond), ev.Message)
	})
	step(t, "reconnect after the headset was out of range", func(t *testing.T) {
		// Out of range: the headset's controller stops answering pages.
		// btvirt answers a page to a controller without page scan with
		// Page Timeout at once, as a real one does after its 5 s; page
		// scan goes off once hci1 is not connectable and keeps no
		// accept-list entry for the box (the kernel scans for those).
		// (Blocking the box on hci1 instead makes btvirt send the
		// rejection to the rejecting side, so the box's Connect never
		// ends.)
		btmgmt(t, "-i", "hci1", "connectable", "off")
		btmgmt(t, "-i", "hci1", "del-device", guest.BtvirtAddr0)
		if out, _ := exec.Command("hciconfig", "hci1").CombinedOutput(); strings.Contains(string(out), "PSCAN") {
			t.Fatalf("hci1 still page-scans:\n%s", out)
		}
		mark := r.ev.mark()
		t0 := time.Now()
		if out, err := exec.Command("hcitool", "-i", "hci1", "dc", guest.BtvirtAddr0, "21").CombinedOutput(); err != nil {
			t.Fatalf("hcitool -i hci1 dc %s: %v: %s", guest.BtvirtAddr0, err, out)
		}
		waitLong(t, r.ev, mark, 20*time.Second, "link loss seen", isDevice(guest.BtvirtAddr1, func(d Device) bool { return !d.Connected }))
		// Away longer than the back-off's first steps (2 s, 4 s): three
		// attempts fail.
		failed, died := 0, false
		waitLong(t, r.ev, mark, 60*time.Second, "three failed attempts", func(e Event) bool {
			if e.Type == EventService && e.Present != nil && !*e.Present {
				died = true
			}
			if e.Type == EventReconnect && e.Error != "" {
				failed++
				t.Logf("attempt %d failed after %s: %s (%s)", failed, time.Since(t0).Round(10*time.Millisecond), e.Error, e.Message)
			}
			return failed == 3 || died
		})
		if died {
			// BlueZ 5.66 (Debian 12) segfaults when the Connect ends in
			// Page Timeout (its debug log's last lines: connect_failed
			// status 4, device_bonding_failed, resume_discovery), in every
			// boot tried; the agent's side of it (no attempt at once when
			// bluetoothd comes back) is TestAutoReconnectSparesADyingBluetoothd.
			t.Skip("bluetoothd 5.66 segfaulted on the page timeout of the agent's Connect: the headset's return cannot be shown with this BlueZ")
		}
		// Back in range: the next attempt of the back-off connects it.
		back := time.Now()
		btmgmt(t, "-i", "hci1", "connectable", "on")
		ev := waitLong(t, r.ev, mark, 30*time.Second, "reconnected by the agent", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
		if d, err := r.c.Device(guest.BtvirtAddr1); err != nil || !d.Connected {
			t.Fatalf("after the agent's reconnect: %+v, %v", d, err)
		}
		t.Logf("reconnected %s after the headset came back in range (%s after it went): %s",
			time.Since(back).Round(10*time.Millisecond), time.Since(t0).Round(10*time.Millisecond), ev.Message)
		if !strings.Contains(ev.Message, "disconnected, try ") {
			t.Errorf("the reconnect's reason %q does not name the drop and the try", ev.Message)
		}
	})
}

// btmgmt runs btmgmt on the board's controllers.
func btmgmt(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("btmgmt", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("btmgmt %s: %v: %s", strings.Join(args, " "), err, out)
	}
	t.Logf("btmgmt %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
}

// peerPairBluetoothctl is issue #4's peer figure: the headset forgotten
// on both sides and found again by a scan (untimed), then the steps the
// agent's Pair takes (pair, trust, connect) driven through bluetoothctl on
// the same bluetoothd, a process per step as a user would; then the same
// again by the agent, so that both figures come from the same state (the
// first pairing of a boot is in the step above). Non-interactive
// bluetoothctl registers no agent: pairing is "just works" for both.
// Logged, not asserted: figures go to docs/BENCHMARKS.md.
func (r *labRig) peerPairBluetoothctl(t *testing.T) {
	r.headsetPairingMode(t)
	r.forgetAndFind(t)
	var times []string
	t0 := time.Now()
	for _, cmd := range []string{"pair", "trust", "connect"} {
		// No --timeout: with it, bluetoothctl 5.66 waits the whole time
		// even after its reply.
		cctx, ccancel := context.WithTimeout(r.ctx, 40*time.Second)
		c := exec.CommandContext(cctx, "bluetoothctl", cmd, guest.BtvirtAddr1)
		c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+r.z.Bus.Address)
		s := time.Now()
		out, err := c.CombinedOutput()
		ccancel()
		times = append(times, fmt.Sprintf("%s %s", cmd, time.Since(s).Round(10*time.Millisecond)))
		if err != nil {
			t.Fatalf("bluetoothctl %s: %v\n%s", cmd, err, out)
		}
	}
	total := time.Since(t0)
	d, err := r.c.Device(guest.BtvirtAddr1)
	if err != nil || !d.Paired || !d.Connected {
		t.Fatalf("after bluetoothctl: %+v, %v", d, err)
	}
	t.Logf("bench bt-pair: bluetoothctl pair to Connected %s (%s)", total.Round(10*time.Millisecond), strings.Join(times, ", "))

	r.forgetAndFind(t)
	var steps []string
	t0 = time.Now()
	d, err = r.c.Pair(r.ctx, guest.BtvirtAddr1, func(s string) {
		steps = append(steps, s+" at "+time.Since(t0).Round(10*time.Millisecond).String())
	})
	if err != nil || !d.Connected {
		t.Fatalf("Pair again: %+v, %v", d, err)
	}
	t.Logf("bench bt-pair: boxagent pair to Connected, again %s (%s)", time.Since(t0).Round(10*time.Millisecond), strings.Join(steps, "; "))
	// The controllers reset expects the paired headset, as left before.
	if d, err := r.c.Disconnect(r.ctx, guest.BtvirtAddr1); err != nil || d.Connected {
		t.Fatalf("Disconnect: %+v, %v", d, err)
	}
}

// headsetPairingMode powers both controllers and puts the headset (hci1)
// in pairing mode: pairable and discoverable.
func (r *labRig) headsetPairingMode(t *testing.T) {
	t.Helper()
	for _, a := range []string{"hci0", "hci1"} {
		if _, err := r.c.SetPowered(r.ctx, a, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.c.SetPairable(r.ctx, "hci1", true, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.SetDiscoverable(r.ctx, "hci1", true, 0); err != nil {
		t.Fatal(err)
	}
}

// forgetAndFind removes the pairing on both sides and has hci0 find the
// headset again, so that the next pairing starts from a discovered,
// unpaired device.
func (r *labRig) forgetAndFind(t *testing.T) {
	t.Helper()
	if err := r.c.Remove(r.ctx, guest.BtvirtAddr1); err != nil {
		t.Fatal(err)
	}
	hci1 := bluezRoot + "/hci1"
	r.rawCall(t, 5*time.Second, hci1, ifaceAdapter+".RemoveDevice", devicePath(hci1, guest.BtvirtAddr0))
	r.find(t)
}

// find has hci0 scan until it finds the headset.
func (r *labRig) find(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	found := false
	r.c.Scan(ctx, ScanOptions{Duration: 30 * time.Second}, func(d Device) {
		if d.Address == guest.BtvirtAddr1 {
			found = true
			cancel()
		}
	})
	if !found {
		t.Fatalf("the scan did not find %s again", guest.BtvirtAddr1)
	}
}

func waitLong(t *testing.T, e *events, from int, d time.Duration, what string, ok func(Event) bool) Event {
	t.Helper()
	timeout := time.After(d)
	for {
		e.mu.Lock()
		for _, ev := range e.all[from:] {
			if ok(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.ping:
		case <-time.After(200 * time.Millisecond): // state without an event (agent registered)
		case <-timeout:
			t.Fatalf("no event in %s: %s", d, what)
		}
	}
}
