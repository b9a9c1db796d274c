package network

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watch follows link changes in the manager's namespace until ctx ends:
// when an uplink's link or its parent comes back (or is made anew), it
// applies the uplink again; when an uplink's carrier returns, it asks its
// DHCP client for a renewal at once (on carrier loss the lease is kept
// until it expires); when a ppp link goes, its session is marked down.
// It follows a netlink subscription and, after a socket error (ENOBUFS:
// messages were lost), subscribes again listing every link, so no change
// goes unseen; nothing of it outlives ctx. It returns ctx's error, or why
// it could not subscribe.
func (m *Manager) Watch(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	reconciled := make(chan struct{})
	go func() {
		defer close(reconciled)
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			// Let a burst of changes (a parent and its VLANs) settle.
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			m.applyMu.Lock()
			m.mu.Lock()
			applied := m.applied
			m.mu.Unlock()
			if applied {
				if _, err := m.reconcile(ctx, false); err != nil && ctx.Err() == nil {
					m.log.Warn("cannot re-apply after a link change", "err", err)
				}
			}
			m.applyMu.Unlock()
		}
	}()
	defer func() { <-reconciled }()

	for {
		updates := make(chan netlink.LinkUpdate, 256)
		done := make(chan struct{})
		failed := make(chan error, 1)
		opts := netlink.LinkSubscribeOptions{
			ListExisting: true,
			ErrorCallback: func(err error) {
				select {
				case failed <- err:
				default:
				}
			},
		}
		if err := inNamespace(m.ns, func() error { return netlink.LinkSubscribeWithOptions(updates, done, opts) }); err != nil {
			return fmt.Errorf("cannot subscribe to link changes: %w", err)
		}
		err := func() error {
			defer func() {
				close(done)
				for range updates {
				}
			}()
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case err := <-failed:
					m.log.Info("link watch: subscribing again", "err", err)
					return nil
				case u, ok := <-updates:
					if !ok {
						return nil
					}
					if m.linkChanged(u) {
						select {
						case kick <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
		if err != nil {
			return err
		}
	}
}

// linkChanged takes in one link update and says whether an uplink needs
// applying again.
func (m *Manager) linkChanged(u netlink.LinkUpdate) bool {
	a := u.Attrs()
	name, idx := a.Name, a.Index
	deleted := u.Header.Type == unix.RTM_DELLINK
	m.mu.Lock()
	var renew *DHCPClient
	var ppp []*PPPoE
	kick := false
	for _, up := range m.cfg.Uplinks {
		link := up.LinkName()
		r := m.runners[link]
		switch {
		case name == link && deleted:
			kick = kick || m.applied
			m.carrier[link] = false
		case name == link:
			now := carrierUp(a)
			if now != m.carrier[link] {
				m.carrier[link] = now
				m.emitLocked(UplinkEvent{Uplink: link, Kind: "link", Detail: carrierText(now), Time: time.Now()})
				if now && r != nil && r.dhcp != nil && r.ifindex == int(idx) {
					renew = r.dhcp
				}
			}
			if r == nil || r.ifindex != int(idx) || r.exited() || m.lastErr[link] != nil {
				kick = kick || m.applied
			}
		case name == up.Parent && (m.lastErr[link] != nil || r == nil || deleted):
			kick = kick || m.applied
		}
	}
	if deleted && strings.HasPrefix(name, "ppp") {
		for _, r := range m.runners {
			if r.ppp != nil {
				ppp = append(ppp, r.ppp)
			}
		}
	}
	m.mu.Unlock()
	if renew != nil {
		renew.Renew()
	}
	for _, p := range ppp {
		p.update("", func(s *PPPoEStatus) {
			if s.Link == name && s.Up {
				s.Up, s.Since, s.Address, s.Peer = false, time.Now(), netip.Addr{}, netip.Addr{}
				s.LastError = "link " + name + " went away"
			}
		})
	}
	return kick
}

// emitLocked reports an event while m.mu is held: from a goroutine, so
// that a receiver may call back into the manager.
func (m *Manager) emitLocked(e UplinkEvent) { go m.emit(e) }

func carrierText(up bool) string {
	if up {
		return "carrier up"
	}
	return "carrier down"
}
