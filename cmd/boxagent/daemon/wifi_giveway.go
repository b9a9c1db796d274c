package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/wifi"
)

// The hotspot gives way (wifi/giveway_policy.go decides when, and
// wifi/giveway.go watches): here the policy is wired to the config in
// effect, the bus, and the operation that closes the hotspot.

// newGiveWayPolicy is the setup hotspot's give-way, on the system clock.
func (s *wifiSetup) newGiveWayPolicy() *wifi.GiveWayPolicy {
	return wifi.NewGiveWayPolicy(wifi.GiveWayPolicyOptions{
		Logger:     s.log,
		SetupAfter: func() time.Duration { return wifiConfig(s.d.a.config()).SetupAfter.Duration() },
		Saved:      func() []wifi.Network { return wifiConfig(s.d.a.config()).Networks },
		Watch: func(ctx context.Context, saved []wifi.Network, found func(wifi.BSS)) (wifi.Watcher, error) {
			s.d.mu.Lock()
			conn, iface := s.d.conn, s.d.iface
			s.d.mu.Unlock()
			if conn == nil {
				return nil, nil
			}
			return wifi.OpenWatch(ctx, conn, wifi.GiveWayOptions{Interface: iface, Saved: saved, Logger: s.d.a.log, Found: found})
		},
		GiveWay: s.yield,
	})
}

// clearStaleWatch removes a watch a killed agent left beside iface,
// unless one of this agent's runs.
func (s *wifiSetup) clearStaleWatch(ctx context.Context, iface string) {
	s.d.mu.Lock()
	conn := s.d.conn
	s.d.mu.Unlock()
	if s.giveWay.Watching() || conn == nil {
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

// yield closes the hotspot because the saved network b is in range:
// an operation of its own (origin auto), so History says why.
func (s *wifiSetup) yield(b wifi.BSS) {
	s.mu.Lock()
	on := s.state == setupOn
	ctx := s.ctx
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
