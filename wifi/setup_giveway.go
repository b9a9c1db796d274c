package wifi

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
)

// The setup hotspot gives way (giveway_policy.go decides when, and
// giveway.go watches): here the policy is wired to the config in
// effect, the client's bus, and the operation that closes the hotspot.
// And the radio's side of the setup: what needs root and radios, so the
// unit tests put a fake in its place.

// newGiveWayPolicy is the setup hotspot's give-way, on the setup's
// clock.
func (s *Setup) newGiveWayPolicy() *GiveWayPolicy {
	return NewGiveWayPolicy(GiveWayPolicyOptions{
		Clock:      s.o.Clock,
		Logger:     s.log,
		SetupAfter: func() time.Duration { return s.o.Config().SetupAfter.Duration() },
		Saved:      func() []Network { return s.o.Config().Networks },
		Watch: func(ctx context.Context, saved []Network, found func(BSS)) (Watcher, error) {
			w, err := s.o.Client()
			if err != nil {
				return nil, nil // no client, no bus to watch with
			}
			return s.radio.watch(ctx, w, GiveWayOptions{Interface: w.Interface(), Saved: saved, Logger: s.o.Logger, Found: found})
		},
		GiveWay: s.giveWayTo,
	})
}

// clearStaleWatch removes a watch a killed agent left beside w's
// interface, unless one of this agent's runs.
func (s *Setup) clearStaleWatch(ctx context.Context, w *Client) {
	if s.giveWay.Watching() {
		return
	}
	if err := s.radio.clearWatch(ctx, w, s.log); err != nil {
		s.log.Warn("cannot remove a watch interface left by an earlier run", "err", err)
	}
}

// giveWayTo closes the hotspot because the saved network b is in range:
// an operation of its own (origin auto), so History says why.
func (s *Setup) giveWayTo(b BSS) {
	s.mu.Lock()
	on := s.state == SetupOn
	ctx := s.ctx
	s.mu.Unlock()
	if !on || ctx.Err() != nil {
		return
	}
	s.log.Info("a saved network is in range again: the setup hotspot gives way", "ssid", b.SSID, "signal_dbm", b.Signal)
	s.o.Publish(map[string]string{"kind": "give-way", "ssid": b.SSID})
	err := s.o.Operate("wifi.setup.stop", fmt.Sprintf("close the Wi-Fi setup hotspot: saved network %q is in range again", b.SSID),
		func(ctx context.Context) (any, error) { return s.Stop(ctx) })
	if err != nil {
		s.log.Warn("the setup hotspot did not close cleanly", "err", err)
	}
	// setup_after again: the hotspot comes back unless the network joins.
	if w, err := s.o.Client(); err == nil {
		s.Opened(ctx, w)
	}
}

// setupRadio is what a Setup does to the radio beyond wpa_supplicant's
// station calls: bring up the hotspot's pieces, watch beside it. On a
// box it is boxRadio; the unit tests, without root or radios, fake it.
type setupRadio interface {
	// up brings the hotspot up on w's interface (StartHotspot).
	up(ctx context.Context, w *Client, o HotspotOptions) (setupHotspot, error)
	// watch starts the give-way's watch (OpenWatch).
	watch(ctx context.Context, w *Client, o GiveWayOptions) (Watcher, error)
	// clearWatch removes a watch interface a killed agent left beside
	// w's (ClearGiveWay).
	clearWatch(ctx context.Context, w *Client, log *slog.Logger) error
}

// setupHotspot is a hotspot that is up.
type setupHotspot interface {
	Credentials() HotspotCredentials
	Clients() int
	// close takes it down (Hotspot.Stop).
	close(ctx context.Context) error
}

// boxRadio is the radio of a box, through netlink and wpa_supplicant.
type boxRadio struct{}

func (boxRadio) up(ctx context.Context, w *Client, o HotspotOptions) (setupHotspot, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("cannot open netlink: %w", err)
	}
	defer h.Close()
	hs, err := StartHotspot(ctx, w, h, o)
	if err != nil {
		return nil, err
	}
	return boxHotspot{hs}, nil
}

func (boxRadio) watch(ctx context.Context, w *Client, o GiveWayOptions) (Watcher, error) {
	return OpenWatch(ctx, w.conn, o)
}

func (boxRadio) clearWatch(ctx context.Context, w *Client, log *slog.Logger) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil
	}
	defer h.Close()
	return ClearGiveWay(ctx, w.conn, h, w.Interface(), log)
}

// boxHotspot is a Hotspot that takes its address off on a netlink
// handle of its own.
type boxHotspot struct{ *Hotspot }

func (hs boxHotspot) close(ctx context.Context) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return hs.Stop(ctx, nil)
	}
	defer h.Close()
	return hs.Stop(ctx, h)
}
