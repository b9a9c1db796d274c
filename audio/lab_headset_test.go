//go:build lab

package audio

import (
	"context"
	"fmt"
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

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestLabHeadset boots the virtual board for the headset tests below
// (their own boot: TestLabAudio's ALSA tests have a tight timeout).
func TestLabHeadset(t *testing.T) {
	vm.RunGoTests(t, "./audio", vm.Options{Timeout: 4 * time.Minute}, "-test.run=^TestHeadsetGuest")
}

// TestHeadsetGuestModes: the headset on the virtual board (btvirt's hci1
// with the HF fake, PulseAudio's Bluetooth modules, paired by the agent's
// bluetooth package) is switched by `audio mode` to music (A2DP: a sink,
// a tone played into it) and to call (HFP: a source, and a recording
// through it that holds the fake headset's tone; the board's tone reaches
// the fake).
func TestHeadsetGuestModes(t *testing.T) {
	vm.RequireGuest(t)
	start := time.Now()
	z := guest.StartBlueZ(t)
	// The fake before PulseAudio and pairing: its record goes into the
	// headset side's SDP, which the board reads at pairing.
	hf := startHFFake(t, z.Bus.Address, true)
	pa := guest.StartBluetoothPulse(t)
	pairHeadset(t, z.Bus.Address)
	t.Logf("board ready and headset paired in %s", time.Since(start).Round(10*time.Millisecond))

	ctx := context.Background()
	c, _, err := Connect(ctx, []Server{{DBus: pa.DBus, Native: pa.Native, How: "lab"}}, Options{
		ModeTimeout:    30 * time.Second,
		ConnectProfile: connectProfileOn(z.Bus.Address),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	card := CardName(guest.BtvirtAddr1)
	waitCard(t, c, card)

	// The profile-not-yet-available path: `call` straight after the
	// connect waits for PulseAudio's ProfileAvailableChanged (asking BlueZ
	// for the voice profile) instead of failing with "Input/output error".
	// The fake holds its answer to PulseAudio's codec selection, so the
	// profile is surely unavailable when the call starts; the call must
	// still be waiting when the fake answers a second later, and then
	// succeed and say that it waited.
	t.Run("call right after connect", func(t *testing.T) {
		cur, ok := c.State().Card(card)
		if !ok {
			t.Fatalf("no card %s", card)
		}
		if p, ok := cur.Profile("handsfree_head_unit"); !ok || p.Available {
			t.Fatalf("handsfree_head_unit before the headset answered +BCS: %+v (listed %v), want listed and unavailable", p, ok)
		}
		// Let go of the fake's answer however this step ends: the steps
		// after it need the profile.
		release := sync.OnceFunc(func() { close(hf.holdBCS) })
		defer release()
		type result struct {
			res ModeResult
			err error
		}
		done := make(chan result, 1)
		t0 := time.Now()
		go func() {
			res, err := c.SetMode(ctx, guest.BtvirtAddr1, ModeCall)
			done <- result{res, err}
		}()
		early := func(r result) {
			t.Fatalf("mode call returned after %s while the profile was unavailable (the headset had not answered +BCS): %+v, %v",
				time.Since(t0).Round(time.Millisecond), r.res, r.err)
		}
		select {
		case <-hf.bcsAsked:
		case r := <-done:
			early(r)
		case <-time.After(30 * time.Second):
			t.Fatal("PulseAudio sent the fake no +BCS in 30 s (see hf-fake.log)")
		}
		select {
		case r := <-done:
			early(r)
		case <-time.After(time.Second):
		}
		held := time.Since(t0)
		release()
		var r result
		select {
		case r = <-done:
		case <-time.After(40 * time.Second):
			t.Fatal("mode call did not return in 40 s after the headset answered +BCS")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Logf("mode call right after connect in %s (%.3f s of it waiting for the profile; the headset held +BCS for %s): %+v",
			time.Since(t0).Round(time.Millisecond), r.res.WaitedSeconds, held.Round(time.Millisecond), r.res)
		if r.res.Profile != "handsfree_head_unit" {
			t.Fatalf("call: %+v, want handsfree_head_unit", r.res)
		}
		// The wait is reported (the CLI prints it): at least the time
		// the headset held its answer, less the call's start.
		if r.res.WaitedSeconds < held.Seconds()-0.5 {
			t.Errorf("the result says it waited %.3f s for the profile; the headset held it unavailable %s", r.res.WaitedSeconds, held.Round(time.Millisecond))
		}
	})

	t.Run("music", func(t *testing.T) {
		t0 := time.Now()
		res, err := c.SetMode(ctx, guest.BtvirtAddr1, ModeMusic)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("mode music in %s: %+v", time.Since(t0).Round(time.Millisecond), res)
		if res.Profile != "a2dp_sink" || res.FallbackSink == "" {
			t.Fatalf("music: %+v, want a2dp_sink with its sink", res)
		}
		r, err := PlayRecord(ctx, TestOptions{Native: pa.Native, Play: true, Sink: res.FallbackSink, Source: res.FallbackSink + ".monitor", Seconds: 2})
		if err != nil {
			t.Fatalf("tone into %s: %v", res.FallbackSink, err)
		}
		t.Logf("tone into the A2DP sink, its monitor: %s", levelString(r.Recorded))
		if r.Recorded.Silent() {
			t.Errorf("the A2DP sink's monitor is silent: %s", levelString(r.Recorded))
		}
		// The same PulseAudio serves the headset side (hci1): its card
		// for the board, as an A2DP source, hears what crossed btvirt.
		// Its card comes with the A2DP transport, which the switch to
		// music has just brought up again: wait for it.
		far := CardName(guest.BtvirtAddr0)
		waitCard(t, c, far)
		if _, err := c.SetMode(ctx, far, "a2dp_source"); err != nil {
			t.Fatalf("headset side's card %s to a2dp_source: %v", far, err)
		}
		farSource := "bluez_source." + strings.TrimPrefix(far, "bluez_card.") + ".a2dp_source"
		r, err = PlayRecord(ctx, TestOptions{Native: pa.Native, Play: true, Sink: res.FallbackSink, Source: farSource, Seconds: 2})
		if err != nil {
			t.Fatalf("tone into %s, recorded from %s: %v", res.FallbackSink, farSource, err)
		}
		t.Logf("the tone on the headset side (%s): %s", farSource, levelString(r.Recorded))
		// ±20 Hz: the tone crosses SBC and the emulated link, which under
		// TCG drops or repeats frames now and then (452 Hz was seen once).
		if f := r.Recorded.FrequencyHz; r.Recorded.Silent() || f < 420 || f > 460 {
			t.Errorf("the headset side recorded %s, want the 440 Hz tone", levelString(r.Recorded))
		}
	})

	t.Run("call", func(t *testing.T) {
		select {
		case <-hf.slcDone:
		case <-time.After(30 * time.Second):
			t.Fatal("PulseAudio did not bring up the HFP service level connection with the fake in 30 s (see hf-fake.log)")
		}
		t0 := time.Now()
		res, err := c.SetMode(ctx, guest.BtvirtAddr1, ModeCall)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("mode call in %s: %+v", time.Since(t0).Round(time.Millisecond), res)
		if res.Profile != "handsfree_head_unit" || res.FallbackSource == "" || res.FallbackSink == "" {
			t.Fatalf("call: %+v, want handsfree_head_unit with a sink and a source", res)
		}
		rx0 := hf.rxNonZero.Load()
		r, err := PlayRecord(ctx, TestOptions{Native: pa.Native, Play: true, Sink: res.FallbackSink, Source: res.FallbackSource, Seconds: 3})
		if err != nil {
			t.Fatalf("record through %s: %v", res.FallbackSource, err)
		}
		t.Logf("bench call-to-recording: from mode call to the end of a %gs recording: %s; recorded %s; the fake got %d bytes (%d non-zero), sent %d",
			r.Recorded.Seconds, time.Since(t0).Round(10*time.Millisecond), levelString(r.Recorded), hf.rx.Load(), hf.rxNonZero.Load(), hf.tx.Load())
		if r.Recorded.Samples == 0 {
			t.Fatalf("no frames from the headset source %s", res.FallbackSource)
		}
		if r.Recorded.Silent() {
			t.Errorf("the headset microphone is silent: %s", levelString(r.Recorded))
		} else if f := r.Recorded.FrequencyHz; f < hfToneHz*0.9 || f > hfToneHz*1.1 {
			t.Errorf("recorded %.0f Hz, want the fake's %d Hz", f, hfToneHz)
		}
		if hf.rxNonZero.Load() == rx0 {
			t.Errorf("the board's tone did not reach the fake headset (rx %d bytes, all zero)", hf.rx.Load())
		}
	})

	// Issue #5's figure: the Bluetooth card's a2dp_sink ⇄
	// handsfree_head_unit by the agent over D-Bus against pactl (a process
	// per switch) in the same run; each switch waits for the model to see
	// it, so the next starts from a settled card. Logged, not asserted.
	t.Run("profile switch vs pactl", func(t *testing.T) {
		ev, cancel := c.Subscribe()
		defer cancel()
		profiles := []string{"a2dp_sink", "handsfree_head_unit"}
		median := func(ds []time.Duration) time.Duration {
			slices.Sort(ds)
			return ds[len(ds)/2].Round(time.Millisecond)
		}
		var dbusTimes, pactlTimes []time.Duration
		for i := 0; i < 4; i++ {
			p := profiles[i%2]
			t0 := time.Now()
			if err := c.SetCardProfile(ctx, card, p); err != nil {
				t.Fatalf("boxagent to %s: %v", p, err)
			}
			dbusTimes = append(dbusTimes, time.Since(t0))
			waitEvent(t, ev, "card.profile "+p, func(e Event) bool { return e.Kind == "card.profile" && e.Name == card && e.Profile == p })
		}
		for i := 0; i < 4; i++ {
			p := profiles[i%2]
			cmd := exec.Command("pactl", "--server="+pa.Native, "set-card-profile", card, p)
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pactl set-card-profile %s %s: %v: %s", card, p, err, out)
			}
			pactlTimes = append(pactlTimes, time.Since(t0))
			waitEvent(t, ev, "card.profile "+p+" from pactl", func(e Event) bool { return e.Kind == "card.profile" && e.Name == card && e.Profile == p })
		}
		t.Logf("bench bt-profile-switch: boxagent over D-Bus %v (median %s); pactl set-card-profile %v (median %s)",
			roundAll(dbusTimes), median(dbusTimes), roundAll(pactlTimes), median(pactlTimes))
	})
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// TestHeadsetGuestHSP: without the HF fake the headset side offers only
// HSP (PulseAudio's own headset role on hci1), and `audio mode call`
// falls back to headset_head_unit, with a source for the microphone.
// (Audio over HSP between two PulseAudio ends stalls, both sides waiting
// to read first: LAB.md; the microphone is proven over HFP above.)
func TestHeadsetGuestHSP(t *testing.T) {
	vm.RequireGuest(t)
	// A former test's pairing (with the HF record in its cache) must not
	// carry over: /var/lib/bluetooth is the boot's tmpfs.
	ents, _ := os.ReadDir("/var/lib/bluetooth")
	for _, e := range ents {
		os.RemoveAll(filepath.Join("/var/lib/bluetooth", e.Name()))
	}
	z := guest.StartBlueZ(t)
	pa := guest.StartBluetoothPulse(t)
	pairHeadset(t, z.Bus.Address)
	ctx := context.Background()
	c, _, err := Connect(ctx, []Server{{DBus: pa.DBus, Native: pa.Native, How: "lab"}}, Options{
		ModeTimeout:    30 * time.Second,
		ConnectProfile: connectProfileOn(z.Bus.Address),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitCard(t, c, CardName(guest.BtvirtAddr1))
	t0 := time.Now()
	res, err := c.SetMode(ctx, guest.BtvirtAddr1, ModeCall)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mode call without HFP in %s: %+v", time.Since(t0).Round(time.Millisecond), res)
	if res.Profile != "headset_head_unit" || res.FallbackSource == "" {
		t.Fatalf("call: %+v, want headset_head_unit with a source", res)
	}
}

// pairHeadset has the agent's bluetooth package power both controllers,
// find hci1 from hci0 and pair, trust and connect it.
func pairHeadset(t *testing.T, busAddr string) {
	t.Helper()
	conn, err := dbus.Connect(busAddr, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	logf, err := os.Create(filepath.Join(guest.LogDir(t), "boxagent-bluetooth.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	// One bluetoothd and one default agent (this one) serve both
	// controllers: the board's address is allow-listed so that the
	// "headset" side accepts the board's profile connections, as a real
	// headset accepts its paired host.
	bt := bluetooth.New(conn, bluetooth.Options{
		Config: bluetooth.Config{Adapter: "hci0", Headsets: []bluetooth.Headset{{Address: guest.BtvirtAddr0}}},
		Logger: slog.New(slog.NewTextHandler(logf, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := bt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bt.Close)
	for _, a := range []string{"hci0", "hci1"} {
		if _, err := bt.SetPowered(ctx, a, true); err != nil {
			t.Fatalf("power %s: %v", a, err)
		}
	}
	if _, err := bt.SetPairable(ctx, "hci1", true, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := bt.SetDiscoverable(ctx, "hci1", true, 0); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	found := false
	if _, err := bt.Scan(sctx, bluetooth.ScanOptions{Duration: 30 * time.Second}, func(d bluetooth.Device) {
		if d.Address == guest.BtvirtAddr1 {
			found = true
			scancel()
		}
	}); err != nil && !found {
		t.Fatalf("scan: %v", err)
	}
	if !found {
		t.Fatalf("hci0 did not find %s", guest.BtvirtAddr1)
	}
	d, err := bt.Pair(ctx, guest.BtvirtAddr1, nil)
	if err != nil {
		t.Fatalf("pair: %v", err)
	}
	if !d.Connected {
		t.Fatalf("after pair: %+v", d)
	}
}

// connectProfileOn is the daemon's ConnectProfile hook, on the board's
// system bus: ask BlueZ to connect the headset's voice profile.
func connectProfileOn(busAddr string) func(ctx context.Context, card string, uuids []string) error {
	return func(ctx context.Context, card string, uuids []string) error {
		conn, err := dbus.Connect(busAddr)
		if err != nil {
			return err
		}
		defer conn.Close()
		addr := strings.ReplaceAll(strings.TrimPrefix(card, "bluez_card."), "_", ":")
		dev := dbus.ObjectPath("/org/bluez/hci0/dev_" + strings.ReplaceAll(addr, ":", "_"))
		var last error
		for _, u := range uuids {
			if last = conn.Object("org.bluez", dev).CallWithContext(ctx, "org.bluez.Device1.ConnectProfile", 0, u).Err; last == nil {
				return nil
			}
		}
		return last
	}
}

// waitCard waits for PulseAudio's card of the headset to be in the model.
func waitCard(t *testing.T, c *Client, card string) {
	t.Helper()
	ev, cancel := c.Subscribe()
	defer cancel()
	timeout := time.After(30 * time.Second)
	for {
		if _, ok := c.State().Card(card); ok {
			return
		}
		select {
		case <-ev:
		case <-timeout:
			t.Fatalf("no card %s in 30 s: %+v", card, c.State().Cards)
		}
	}
}

// levelString shows a Level with its dBFS values rather than pointers.
func levelString(l Level) string {
	db := func(p *float64) string {
		if p == nil {
			return "-inf"
		}
		return fmt.Sprintf("%.1f", *p)
	}
	return fmt.Sprintf("%d samples (%.2f s), RMS %s dBFS, peak %s dBFS, %.1f %% non-zero, %.0f Hz",
		l.Samples, l.Seconds, db(l.RMSdBFS), db(l.PeakdBFS), l.NonZeroPercent, l.FrequencyHz)
}
