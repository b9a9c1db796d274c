package audio

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A headset as PulseAudio 16 shows a HFP-capable one.
var fullHeadset = []fakeProfile{
	{name: "a2dp_sink", available: true, sinks: 1, priority: 40},
	{name: "a2dp_source", available: true, sources: 1, priority: 20},
	{name: "handsfree_head_unit", available: true, sinks: 1, sources: 1, priority: 30},
	{name: "headset_head_unit", available: true, sinks: 1, sources: 1, priority: 30},
	{name: "off", available: true},
}

func TestHeadsetModes(t *testing.T) {
	_, c := newFakePulse(t, fullHeadset, Options{})
	ctx := context.Background()
	card, ok := c.State().Card(fakeHeadset)
	if !ok || !card.Headset || card.Mode != ModeOff || !slices.Equal(card.Modes, []string{ModeMusic, ModeCall, ModeOff}) {
		t.Fatalf("card = %+v", card)
	}
	ev, cancel := c.Subscribe()
	defer cancel()

	res, err := c.SetMode(ctx, "00:aa:01:01:00:01", ModeMusic)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile != "a2dp_sink" || res.FallbackSink != "bluez_sink.00_AA_01_01_00_01.a2dp_sink" || res.FallbackSource != "" {
		t.Errorf("music: %+v", res)
	}
	waitEvent(t, ev, "card.profile a2dp_sink", func(e Event) bool { return e.Kind == "card.profile" && e.Profile == "a2dp_sink" })

	res, err = c.SetMode(ctx, fakeHeadset, ModeCall)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile != "handsfree_head_unit" || res.FallbackSink != "bluez_sink.00_AA_01_01_00_01.handsfree_head_unit" ||
		res.FallbackSource != "bluez_source.00_AA_01_01_00_01.handsfree_head_unit" {
		t.Errorf("call: %+v", res)
	}
	waitEvent(t, ev, "fallback_source", func(e Event) bool {
		return e.Kind == "fallback_source" && e.Value == "bluez_source.00_AA_01_01_00_01.handsfree_head_unit"
	})
	s := c.State()
	card, _ = s.Card(fakeHeadset)
	if card.Mode != ModeCall || card.ActiveProfile != "handsfree_head_unit" || len(card.Sinks) != 1 || len(card.Sources) != 1 {
		t.Errorf("after call: %+v", card)
	}
	if s.FallbackSource != "bluez_source.00_AA_01_01_00_01.handsfree_head_unit" {
		t.Errorf("fallback source = %q", s.FallbackSource)
	}

	if res, err := c.SetMode(ctx, fakeHeadset, ModeOff); err != nil || res.Profile != "off" {
		t.Errorf("off: %+v %v", res, err)
	}
	waitEvent(t, ev, "sink.removed", func(e Event) bool { return e.Kind == "sink.removed" })
	// A raw profile name is accepted too.
	if res, err := c.SetMode(ctx, fakeHeadset, "headset_head_unit"); err != nil || res.Mode != ModeCall {
		t.Errorf("raw profile: %+v %v", res, err)
	}
	if _, err := c.SetMode(ctx, fakeHeadset, "karaoke"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown mode: %v", err)
	}
}

// TestHeadsetCallFallsBackToHSP: without HFP, call is HSP.
func TestHeadsetCallFallsBackToHSP(t *testing.T) {
	_, c := newFakePulse(t, []fakeProfile{fullHeadset[0], fullHeadset[3], fullHeadset[4]}, Options{})
	res, err := c.SetMode(context.Background(), fakeHeadset, ModeCall)
	if err != nil || res.Profile != "headset_head_unit" || !strings.HasPrefix(res.FallbackSource, "bluez_source.") {
		t.Errorf("call on an HSP-only headset: %+v %v", res, err)
	}
}

func TestHeadsetWithoutMicrophone(t *testing.T) {
	_, c := newFakePulse(t, []fakeProfile{fullHeadset[0], fullHeadset[4]}, Options{})
	_, err := c.SetMode(context.Background(), fakeHeadset, ModeCall)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "the headset offers no microphone profile (HFP/HSP)") {
		t.Errorf("call without HFP/HSP: %v", err)
	}
	if card, _ := c.State().Card(fakeHeadset); card.ActiveProfile != "off" {
		t.Errorf("the refused switch changed the profile to %s", card.ActiveProfile)
	}
}

// TestHeadsetCallWaitsForProfile: right after connect the headset has
// brought up A2DP only; call asks BlueZ for HFP and waits for PulseAudio's
// ProfileAvailableChanged instead of failing with "Input/output error".
func TestHeadsetCallWaitsForProfile(t *testing.T) {
	profiles := slices.Clone(fullHeadset)
	profiles[2].available = false // handsfree_head_unit
	profiles[3].available = false // headset_head_unit
	var f *fakePulse
	bt := &fakeBluetooth{connect: func(address, uuid string) error {
		// The headset connects HFP a little later.
		time.AfterFunc(200*time.Millisecond, func() { f.setAvailable("handsfree_head_unit", true) })
		return nil
	}}
	f, c := newFakePulse(t, profiles, Options{ModeTimeout: 5 * time.Second, Bluetooth: bt})
	// Straight to the profile: PulseAudio's own refusal keeps its words.
	err := c.SetCardProfile(context.Background(), fakeHeadset, "handsfree_head_unit")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Input/output error") {
		t.Errorf("unavailable profile set directly: %v", err)
	}
	res, err := c.SetMode(context.Background(), fakeHeadset, ModeCall)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile != "handsfree_head_unit" || res.WaitedSeconds < 0.15 {
		t.Errorf("call after waiting: %+v", res)
	}
	if asked := bt.calls(); !slices.Equal(asked, []string{"00:AA:01:01:00:01 0000111e-0000-1000-8000-00805f9b34fb"}) {
		t.Errorf("BlueZ was asked %v, want the HFP hands-free UUID for the card's address", asked)
	}
}

// fakeBluetooth is the daemon's Bluetooth client as audio sees it: it
// records what it is asked and answers with connect.
type fakeBluetooth struct {
	connect func(address, uuid string) error

	mu    sync.Mutex
	asked []string
}

func (b *fakeBluetooth) ConnectProfile(_ context.Context, address, uuid string) error {
	b.mu.Lock()
	b.asked = append(b.asked, address+" "+uuid)
	b.mu.Unlock()
	return b.connect(address, uuid)
}

func (b *fakeBluetooth) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.asked)
}

// TestConnectVoice: a headset's card is its address to Bluetooth, HFP is
// asked first and HSP after it; a card of no headset asks nothing.
func TestConnectVoice(t *testing.T) {
	const hfp, hsp = "0000111e-0000-1000-8000-00805f9b34fb", "00001108-0000-1000-8000-00805f9b34fb"
	refuse := errors.New("refused")
	for _, tt := range []struct {
		name   string
		card   string
		refuse []string // the UUIDs Bluetooth refuses
		asked  []string
		err    string // "" when it connected
	}{
		{"HFP", fakeHeadset, nil, []string{hfp}, ""},
		{"HSP when HFP is refused", fakeHeadset, []string{hfp}, []string{hfp, hsp}, ""},
		{"neither", fakeHeadset, []string{hfp, hsp}, []string{hfp, hsp}, "refused\nrefused"},
		{"not a headset", "alsa_card.dummy", nil, nil, "alsa_card.dummy is not a Bluetooth card"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bt := &fakeBluetooth{connect: func(address, uuid string) error {
				if address != "00:AA:01:01:00:01" {
					t.Errorf("asked for %s", address)
				}
				if slices.Contains(tt.refuse, uuid) {
					return refuse
				}
				return nil
			}}
			err := connectVoice(context.Background(), bt, tt.card)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err) {
				t.Errorf("connectVoice(%s) = %v, want %q", tt.card, err, tt.err)
			}
			var asked []string
			for _, a := range bt.calls() {
				asked = append(asked, strings.TrimPrefix(a, "00:AA:01:01:00:01 "))
			}
			if !slices.Equal(asked, tt.asked) {
				t.Errorf("asked %v, want %v", asked, tt.asked)
			}
		})
	}
}

func TestHeadsetCallTimesOut(t *testing.T) {
	profiles := slices.Clone(fullHeadset)
	profiles[2].available = false
	profiles[3].available = false
	_, c := newFakePulse(t, profiles, Options{ModeTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := c.SetMode(context.Background(), fakeHeadset, ModeCall)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not become available within 300ms") {
		t.Errorf("call that never becomes available: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %s", d)
	}
}
