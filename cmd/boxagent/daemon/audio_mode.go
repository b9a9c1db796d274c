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

var _ modeSetter = (*audio.Client)(nil)

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
		return
	case "card.added":
	default:
		return
	}
	addr, ok := audio.HeadsetAddress(e.Name)
	if !ok || m.seen[e.Name] {
		return
	}
	h, ok := m.config().Headset(addr)
	if !ok {
		return
	}
	mode := h.Mode
	if mode == "" {
		mode = bluetooth.ModeMusic
	}
	m.seen[e.Name] = true
	go func() {
		res, err := c.SetMode(ctx, e.Name, mode)
		if err != nil {
			m.log.Warn("cannot put the headset in its configured mode", "card", e.Name, "mode", mode, "err", err)
			return
		}
		m.log.Info("headset in its configured mode", "card", e.Name, "mode", mode, "profile", res.Profile)
		m.publish(audio.Event{Kind: "card.mode", Name: e.Name, Profile: res.Profile, Value: mode})
	}()
}
