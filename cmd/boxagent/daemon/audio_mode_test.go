package daemon

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/bluetooth"
)

// setModes records SetMode's calls.
type setModes chan string

func (s setModes) SetMode(_ context.Context, card, mode string) (audio.ModeResult, error) {
	s <- card + " " + mode
	return audio.ModeResult{Card: card, Mode: mode, Profile: mode + "-profile"}, nil
}

func TestHeadsetModes(t *testing.T) {
	cfg := bluetooth.Config{Headsets: []bluetooth.Headset{
		{Address: "00:1b:66:aa:bb:cc"},               // no mode: music
		{Address: "00:1B:66:11:22:33", Mode: "call"}, // its own
	}}
	published := make(chan audio.Event, 10)
	m := &headsetModes{log: slog.New(slog.NewTextHandler(io.Discard, nil)), seen: map[string]bool{},
		config: func() bluetooth.Config { return cfg }, publish: func(e audio.Event) { published <- e }}
	calls := make(setModes, 10)
	ctx := context.Background()
	next := func() string {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no SetMode")
			return ""
		}
	}
	none := func(why string) {
		t.Helper()
		select {
		case c := <-calls:
			t.Errorf("%s: SetMode %s", why, c)
		case <-time.After(100 * time.Millisecond):
		}
	}
	m.card(ctx, calls, audio.Event{Kind: "card.added", Name: "bluez_card.00_1B_66_AA_BB_CC"})
	if c := next(); c != "bluez_card.00_1B_66_AA_BB_CC music" {
		t.Errorf("a headset without a mode: %s, want music", c)
	}
	if e := <-published; e.Kind != "card.mode" || e.Value != "music" {
		t.Errorf("event %+v", e)
	}
	m.card(ctx, calls, audio.Event{Kind: "card.added", Name: "bluez_card.00_1B_66_11_22_33"})
	if c := next(); c != "bluez_card.00_1B_66_11_22_33 call" {
		t.Errorf("a headset in call mode: %s", c)
	}
	// The same card again (PulseAudio's NewProfile): the user's later
	// choice stands.
	m.card(ctx, calls, audio.Event{Kind: "card.added", Name: "bluez_card.00_1B_66_AA_BB_CC"})
	none("the card seen again")
	// Unknown headsets and other cards are left alone.
	m.card(ctx, calls, audio.Event{Kind: "card.added", Name: "bluez_card.00_1B_66_00_00_09"})
	m.card(ctx, calls, audio.Event{Kind: "card.added", Name: "alsa_card.dummy"})
	none("an unknown card")
	// Gone and back (the headset reconnects): its mode again.
	m.card(ctx, calls, audio.Event{Kind: "card.removed", Name: "bluez_card.00_1B_66_AA_BB_CC"})
	m.card(ctx, calls, audio.Event{Kind: "card.added", Name: "bluez_card.00_1B_66_AA_BB_CC"})
	if c := next(); c != "bluez_card.00_1B_66_AA_BB_CC music" {
		t.Errorf("after a reconnect: %s", c)
	}
}

// bt pair saves the headset after the pairing's connect made its card:
// the reload puts it in its mode; headsets the config had keep theirs.
func TestHeadsetModesSavedAfterTheCard(t *testing.T) {
	old := bluetooth.Config{Headsets: []bluetooth.Headset{{Address: "00:1B:66:11:22:33", Mode: "call"}}}
	cfg := old
	cfg.Headsets = append(cfg.Headsets, bluetooth.Headset{Address: "00:1B:66:AA:BB:CC", Mode: "music"})
	cur := old
	m := &headsetModes{log: slog.New(slog.NewTextHandler(io.Discard, nil)), seen: map[string]bool{},
		config: func() bluetooth.Config { return cur }, publish: func(audio.Event) {}}
	calls := make(setModes, 10)
	ctx := context.Background()
	for _, card := range []string{"bluez_card.00_1B_66_11_22_33", "bluez_card.00_1B_66_AA_BB_CC"} {
		m.card(ctx, calls, audio.Event{Kind: "card.added", Name: card})
	}
	if c := <-calls; c != "bluez_card.00_1B_66_11_22_33 call" {
		t.Errorf("the configured headset: %s", c)
	}
	cur = cfg
	m.card(ctx, calls, audio.Event{Kind: "card.removed", Name: "bluez_card.00_1B_66_11_22_33"})
	m.configured(ctx, calls, []string{"bluez_card.00_1B_66_11_22_33", "bluez_card.00_1B_66_AA_BB_CC", "alsa_card.dummy"}, old, cfg)
	select {
	case c := <-calls:
		if c != "bluez_card.00_1B_66_AA_BB_CC music" {
			t.Errorf("after the save: %s, want only the new headset in music", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new headset was not put in its mode")
	}
	select {
	case c := <-calls:
		t.Errorf("a headset the config had was switched: %s", c)
	case <-time.After(100 * time.Millisecond):
	}
}
