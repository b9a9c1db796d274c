package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/bluetooth"
)

// modeSetter is what headsetModes needs of the audio client.
type modeSetter interface {
	SetMode(ctx context.Context, card, mode string) (audio.ModeResult, error)
}

var _ modeSetter = audio.Backend(nil)

// headsetModes puts a configured headset in its [[bluetooth.headset]] mode
// (music unless it says call) when its card appears, that is when the
// headset connects: PulseAudio itself may bring it up in call mode (HFP,
// 8 kHz mono), which is not what a box for TV sound wants. Once per
// appearance, so a user's `audio mode` afterwards stands; a headset the
// config does not list is left as the sound server made it.
type headsetModes struct {
	log     *slog.Logger
	config  func() bluetooth.Config
	publish func(audio.Event)

	mu   sync.Mutex
	seen map[string]bool // cards put in their mode since they appeared
}

func (d *audioDomain) headsetModes() *headsetModes {
	return &headsetModes{log: d.log, seen: map[string]bool{},
		config:  func() bluetooth.Config { return d.a.config().Bluetooth },
		publish: func(e audio.Event) { d.a.events.Publish("audio", e) }}
}

// card takes one of the audio client's events; a new headset card is
// switched in the background (SetMode waits for the profile to become
// available, which can take seconds after the connect).
func (m *headsetModes) card(ctx context.Context, c modeSetter, e audio.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch e.Kind {
	case "card.removed":
		delete(m.seen, e.Name)
	case "card.added":
		m.apply(ctx, c, e.Name, m.config())
	}
}

// configured takes the cards present when the config changed from old to
// cfg: a headset bt pair saves is saved after its card appeared (the
// pairing's connect makes it), so its mode is applied here. Only headsets
// new to the config: the others' cards keep what they have.
func (m *headsetModes) configured(ctx context.Context, c modeSetter, cards []string, old, cfg bluetooth.Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, card := range cards {
		if addr, ok := audio.HeadsetAddress(card); ok {
			if _, had := old.Headset(addr); !had {
				m.apply(ctx, c, card, cfg)
			}
		}
	}
}

// apply switches card to its configured mode unless it was since it
// appeared. m.mu is held.
func (m *headsetModes) apply(ctx context.Context, c modeSetter, card string, cfg bluetooth.Config) {
	addr, ok := audio.HeadsetAddress(card)
	if !ok || m.seen[card] {
		return
	}
	h, ok := cfg.Headset(addr)
	if !ok {
		return
	}
	mode := h.Mode
	if mode == "" {
		mode = bluetooth.ModeMusic
	}
	m.seen[card] = true
	go func() {
		res, err := c.SetMode(ctx, card, mode)
		if err != nil {
			m.log.Warn("cannot put the headset in its configured mode", "card", card, "mode", mode, "err", err)
			return
		}
		m.log.Info("headset in its configured mode", "card", card, "mode", mode, "profile", res.Profile)
		m.publish(audio.Event{Kind: "card.mode", Name: card, Profile: res.Profile, Value: mode})
	}()
}
