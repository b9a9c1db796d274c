package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/wifi"
)

// The hotspot gives way (wifi/giveway.go): one that setup_after
// opened (the box came up before the home router, after a power cut)
// closes by itself when a saved network is in range again, and the box
// joins it. A hotspot opened by hand (wifi setup start) stays until
// setup ends: someone wants to change networks. After giving way the
// setup_after timer runs again, so a saved network that is in range but
// does not join (its password changed) brings the hotspot back; it then
// holds before it looks again (watchAfterHold), longer each time, so it
// does not close and reopen every setup_after under someone using it.

// giveWayHoldMax bounds the hold: the router's return is still found
// within half an hour.
const giveWayHoldMax = 30 * time.Minute

// giveWayHold is how long a hotspot that opened by itself holds before
// it looks for the saved networks, after n give-ways in a row that did
// not end in a join: nothing the first time, then setup_after, doubled
// each time up to giveWayHoldMax.
func giveWayHold(n int, setupAfter time.Duration) time.Duration {
	if n <= 0 || setupAfter <= 0 {
		return 0
	}
	hold := setupAfter
	for range n - 1 {
		if hold >= giveWayHoldMax/2 {
			return giveWayHoldMax
		}
		hold *= 2
	}
	return min(hold, giveWayHoldMax)
}

// watchAfterHold starts the watch beside the hotspot on iface: at once,
// or after the hold that give-ways which did not join call for.
func (s *wifiSetup) watchAfterHold(iface string) {
	after := wifiConfig(s.d.a.config()).SetupAfter.Duration()
	s.mu.Lock()
	hold, n := giveWayHold(s.gaveWay, after), s.gaveWay
	if s.hold != nil { // one is pending already
		s.mu.Unlock()
		return
	}
	if hold == 0 || !s.auto {
		s.mu.Unlock()
		s.watchSaved(iface)
		return
	}
	s.holdEnd = time.Now().Add(hold)
	var t *time.Timer
	t = time.AfterFunc(hold, func() {
		s.mu.Lock()
		mine := s.hold == t
		if mine {
			s.hold = nil
		}
		s.mu.Unlock()
		if mine {
			s.watchSaved(iface)
		}
	})
	s.hold = t
	s.mu.Unlock()
	s.log.Info("the setup hotspot holds before it looks for the saved networks again: the last give-way did not join",
		"hold", hold, "gave_way", n)
}

// watchTimeout bounds the watch's start: an interface added, handed to
// wpa_supplicant, its networks added.
const watchTimeout = 15 * time.Second

// watchSaved starts the watch for the saved networks beside the hotspot
// on iface, if the hotspot opened by itself and there are saved
// networks; a radio that cannot is logged, and the hotspot stays.
func (s *wifiSetup) watchSaved(iface string) {
	s.mu.Lock()
	auto := s.auto && s.state == setupOn
	s.mu.Unlock()
	saved := wifiConfig(s.d.a.config()).Networks
	s.d.mu.Lock()
	conn := s.d.conn
	s.d.mu.Unlock()
	if !auto || len(saved) == 0 || conn == nil {
		return
	}
	h, err := netlink.NewHandle()
	if err != nil {
		s.log.Warn("the setup hotspot cannot watch for the saved networks: no netlink", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
	defer cancel()
	g, err := wifi.WatchSaved(ctx, conn, h, wifi.GiveWayOptions{Interface: iface, Saved: saved, Logger: s.d.a.log, Found: s.giveWay})
	if err != nil {
		h.Close()
		s.log.Warn("the setup hotspot cannot watch for the saved networks: it stays until setup ends", "err", err)
		return
	}
	s.mu.Lock()
	closed := s.state != setupOn // the hotspot closed meanwhile
	if !closed {
		s.watch, s.watchNL = g, h
	}
	s.mu.Unlock()
	if closed {
		g.Close(context.Background())
		h.Close()
	}
}

// clearStaleWatch removes a watch a killed agent left beside iface,
// unless one of this agent's runs.
func (s *wifiSetup) clearStaleWatch(ctx context.Context, iface string) {
	s.mu.Lock()
	running := s.watch != nil
	s.mu.Unlock()
	s.d.mu.Lock()
	conn := s.d.conn
	s.d.mu.Unlock()
	if running || conn == nil {
		return
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return
	}
	defer h.Close()
	if err := wifi.ClearGiveWay(ctx, conn, h, iface, s.log); err != nil {
		s.log.Warn("cannot remove a watch interface left by an earlier run", "err", err)
	}
}

// rewatch follows a reload that changed the saved networks: a hotspot
// that gives way watches for the new list.
func (s *wifiSetup) rewatch() {
	s.mu.Lock()
	on := s.state == setupOn && s.auto && s.hold == nil // a hold's end reads the new list
	s.mu.Unlock()
	s.d.mu.Lock()
	iface := s.d.iface
	s.d.mu.Unlock()
	if !on {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
	defer cancel()
	s.stopWatch(ctx)
	s.watchSaved(iface)
}

// stopWatch ends the watch, if one runs.
func (s *wifiSetup) stopWatch(ctx context.Context) {
	s.mu.Lock()
	g, h := s.watch, s.watchNL
	s.watch, s.watchNL = nil, nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	if err := g.Close(ctx); err != nil {
		s.log.Warn("cannot end the watch for the saved networks", "err", err)
	}
	h.Close()
}

// giveWay closes the hotspot because the saved network b is in range:
// an operation of its own (origin auto), so History says why.
func (s *wifiSetup) giveWay(b wifi.BSS) {
	s.mu.Lock()
	on := s.state == setupOn && s.watch != nil
	ctx := s.ctx
	if on {
		s.gaveWay++ // until the join resets it
	}
	s.mu.Unlock()
	if !on || ctx.Err() != nil {
		return
	}
	s.log.Info("a saved network is in range again: the setup hotspot gives way", "ssid", b.SSID, "signal_dbm", b.Signal)
	s.d.a.events.Publish("wifi.setup", map[string]string{"kind": "give-way", "ssid": b.SSID})
	op, err := s.api.Run(localapi.Spec{Kind: "wifi.setup.stop",
		Summary: fmt.Sprintf("close the Wi-Fi setup hotspot: saved network %q is in range again", b.SSID)},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			return s.stop(ctx)
		})
	if err == nil && op.Error != nil {
		s.log.Warn("the setup hotspot did not close cleanly", "err", op.Error.Message)
	}
	// setup_after again: the hotspot comes back unless the network joins.
	if w := s.d.client(); w != nil {
		s.opened(ctx, w)
	}
}
