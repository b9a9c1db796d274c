//go:build lab

package audio

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// headsetStack is one sound server the headset tests run on: the same
// steps, the same assertions, the names each stack gives.
type headsetStack struct {
	name string
	// start starts the stack's daemons (bluetoothd runs; before the
	// pairing, so that their endpoints are in the headset's SDP record)
	// and returns a function that reaches the stack as the agent does.
	start func(t *testing.T, z *guest.BlueZ) (native string, connect func(context.Context, Options) (Backend, error))
	// music and call are the profiles the modes pick.
	music, call string
	// holdBCS runs the "call right after connect" step: the HF fake holds
	// its codec answer, so the voice profile is surely unavailable when
	// the call starts (PulseAudio; not tried on PipeWire yet).
	holdBCS bool
	// a2dpRace: the stack meets BlueZ 5.66's A2DP race at pairing, and the
	// harness's workaround runs when it does (a2dpRaceWorkaround).
	a2dpRace bool
	// headsetSource finds the headset side's source of the board's music.
	headsetSource func(t *testing.T, c Backend) string
	// farWhileStreaming: that source exists only while the board streams
	// A2DP (PipeWire: WirePlumber suspends the idle A2DP sink, btvirt's
	// transport then errors and the headset side's node goes, to come
	// back with the next stream), so the board plays before it is looked
	// for and while it records.
	farWhileStreaming bool
}

var headsetStacks = []headsetStack{
	{
		name: BackendPulseAudio,
		start: func(t *testing.T, z *guest.BlueZ) (string, func(context.Context, Options) (Backend, error)) {
			pa := guest.StartBluetoothPulse(t)
			return pa.Native, func(ctx context.Context, o Options) (Backend, error) {
				c, _, err := Connect(ctx, []Server{{DBus: pa.DBus, Native: pa.Native, How: "lab"}}, o)
				if err != nil {
					return nil, err
				}
				return c, nil
			}
		},
		music: "a2dp_sink", call: "handsfree_head_unit", holdBCS: true,
		// The same PulseAudio serves the headset side (hci1): its card
		// for the board, as an A2DP source, hears what crossed btvirt.
		// The card comes with the A2DP transport, which the switch to
		// music has just brought up again: wait for it.
		headsetSource: func(t *testing.T, c Backend) string {
			far := CardName(guest.BtvirtAddr0)
			waitCard(t, c, far)
			if _, err := c.SetMode(context.Background(), far, "a2dp_source"); err != nil {
				t.Fatalf("headset side's card %s to a2dp_source: %v", far, err)
			}
			return "bluez_source." + strings.TrimPrefix(far, "bluez_card.") + ".a2dp_source"
		},
	},
	{
		name: BackendPipeWire,
		start: func(t *testing.T, z *guest.BlueZ) (string, func(context.Context, Options) (Backend, error)) {
			pw := guest.StartPipeWire(t, z.Bus)
			// The agent picks its backend by this, from the real process.
			if !PipeWire("/proc") {
				t.Fatal("pipewire-pulse runs but PipeWire(/proc) does not see it")
			}
			return pw.Native, func(ctx context.Context, o Options) (Backend, error) {
				c, _, err := ConnectPipeWire(ctx, []Server{{Native: pw.Native, How: "lab"}}, o)
				if err != nil {
					return nil, err
				}
				return c, nil
			}
		},
		music: "a2dp-sink", call: "headset-head-unit", a2dpRace: true, farWhileStreaming: true,
		// The headset side's A2DP source is a capture node of its card for
		// the board (bluez_input.00_AA_01_00_00_00.N).
		headsetSource: func(t *testing.T, c Backend) string {
			prefix := "bluez_input." + strings.TrimPrefix(CardName(guest.BtvirtAddr0), "bluez_card.")
			var src string
			waitState(t, c, "a source "+prefix+".*", func(s State) bool {
				for _, d := range s.Sources {
					if !d.IsMonitor && strings.HasPrefix(d.Name, prefix+".") {
						src = d.Name
					}
				}
				return src != ""
			})
			return src
		},
	},
}

// waitState waits, by the backend's events, until cond holds (30 s guard).
func waitState(t *testing.T, c Backend, what string, cond func(State) bool) {
	t.Helper()
	ev, cancel := c.Subscribe()
	defer cancel()
	timeout := time.After(30 * time.Second)
	for !cond(c.State()) {
		select {
		case <-ev:
		case <-c.Done():
			t.Fatalf("waiting for %s: the connection to the sound server closed", what)
		case <-timeout:
			t.Fatalf("no %s in 30 s: %+v", what, c.State())
		}
	}
}

// hasProfile says whether a card lists a profile.
func hasProfile(s State, card, profile string) bool {
	c, ok := s.Card(card)
	if !ok {
		return false
	}
	_, ok = c.Profile(profile)
	return ok
}

// workarounds counts the uses of a2dpRaceWorkaround in this guest run; each
// is also a line in LogDir/workarounds.log.
var workarounds struct {
	sync.Mutex
	n int
}

// a2dpRaceWorkaround is the lab's workaround for BlueZ 5.66's race on the
// first A2DP connect between two BlueZ controllers: the headset side's
// reverse discovery overwrites the AVDTP transaction label while the
// sound server's answer to SetConfiguration is pending ("Transaction
// label doesn't match", then "No reply to SetConfiguration request"), and
// A2DP stays busy until bluetoothd restarts. Fixed upstream by "a2dp: fix
// incorrect transaction label in setconf phase" (linux-bluetooth, January
// 2024), not in Debian 12's 5.66. A slow sound server meets it every
// time: WirePlumber under TCG did on 15 boots of 15 in the lab-spike,
// PulseAudio does not. A real headset runs no BlueZ, so this lives in the
// test harness only, and is never silent: each use is logged with
// "WORKAROUND" and counted.
//
// What it does, once A2DP is missing after the pairing (guard: 10 s of
// the card's events): restart bluetoothd, register the HF fake's profile
// again (it went with bluetoothd), wait for WirePlumber's endpoints (it
// registers them again by itself), then let the headset side reconnect on
// its own, the board being the acceptor (connecting from the board right
// after the restart met the race again: 0 of 3 in the spike). If A2DP is
// still missing, the board connects, and the whole is tried once more.
func a2dpRaceWorkaround(t *testing.T, z *guest.BlueZ, hf *guest.HFFake, bt *bluetooth.Client, c Backend, card, music string) {
	t.Helper()
	guard := func(d time.Duration) bool {
		ev, cancel := c.Subscribe()
		defer cancel()
		timeout := time.After(d)
		for !hasProfile(c.State(), card, music) {
			select {
			case <-ev:
			case <-timeout:
				return false
			}
		}
		return true
	}
	if guard(10 * time.Second) {
		return
	}
	for attempt := 1; attempt <= 2; attempt++ {
		t0 := time.Now()
		workarounds.Lock()
		workarounds.n++
		n := workarounds.n
		workarounds.Unlock()
		msg := fmt.Sprintf("WORKAROUND bluez-5.66-a2dp-setconf-label (upstream: \"a2dp: fix incorrect transaction label in setconf phase\"): "+
			"%s has no %s after the pairing; restarting bluetoothd (attempt %d, use %d in this run)", card, music, attempt, n)
		guest.Workaround(t, guest.LogDir(t), msg)
		z.Bluetoothd = z.Bluetoothd.Restart(t, z.Bus)
		if err := hf.Register(); err != nil {
			t.Fatalf("the HF fake cannot register again: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := guest.WaitA2DPEndpoints(ctx, z.Bus)
		cancel()
		if err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		if guard(15 * time.Second) {
			t.Logf("WORKAROUND done: %s has %s %s after the restart (the headset side reconnected)", card, music, time.Since(t0).Round(10*time.Millisecond))
			return
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 25*time.Second)
		d, cerr := bt.Connect(cctx, guest.BtvirtAddr1, nil)
		ccancel()
		if guard(5 * time.Second) {
			t.Logf("WORKAROUND done: %s has %s %s after the restart and a connect from the board", card, music, time.Since(t0).Round(10*time.Millisecond))
			return
		}
		t.Logf("WORKAROUND attempt %d: still no %s (connect: %v, connected %v)", attempt, music, cerr, d.Connected)
	}
	t.Fatalf("%s has no %s after the pairing, and the BlueZ 5.66 race workaround did not bring it (see bluetoothd.log)", card, music)
}
