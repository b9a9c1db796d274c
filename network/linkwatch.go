package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watch follows link changes in the manager's namespace until ctx ends:
// when an uplink's link or its parent comes back (or is made anew), it
// applies the uplink again; when an uplink's carrier returns, it asks its
// DHCP client for a renewal at once (on carrier loss the lease is kept
// until it expires) and puts a static uplink's addressing back; when a
// ppp link goes, its session is marked down. Each such re-apply is one
// Reapply (trigger "link-watch") run through ManagerOptions.Reapply.
// It follows a netlink subscription and, after a socket error (ENOBUFS:
// messages were lost), subscribes again listing every link, so no change
// goes unseen, backing off while that repeats; messages not from the
// kernel are ignored. Nothing of it outlives ctx. It returns ctx's error, or why
// it could not subscribe.
func (m *Manager) Watch(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	m.mu.Lock()
	m.kick = kick // for wpa_supplicant's arrival (see followSupplicant)
	m.mu.Unlock()
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
			m.mu.Lock()
			w := m.pending
			m.pending = reapplyWork{}
			m.mu.Unlock()
			if w = m.stillNeeded(w); !w.empty() {
				m.runReapply(ctx, w.reapply(), func(ctx context.Context) (any, error) { return m.reapplyNow(ctx, w) })
			}
		}
	}()
	defer func() { <-reconciled }()

	delay := resubscribeMin
	for {
		began := time.Now()
		reason, err := m.watchOnce(ctx, kick)
		if err != nil {
			return err
		}
		// A subscription that held a while starts the back-off over; one
		// that failed at once waits longer each time, so a fault that
		// repeats cannot spin (nor fill the log).
		if time.Since(began) > resubscribeMax {
			delay = resubscribeMin
		}
		m.log.Info("link watch: subscribing again", "err", reason, "after", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, resubscribeMax)
	}
}

// The link watch's back-off between subscriptions.
const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 30 * time.Second
)

// watchOnce follows one subscription until it fails (it returns why) or
// ctx ends (it returns ctx's error). Messages the library drops (not from
// the kernel: another subscriber sending to the link group; a netlink
// error answer) do not end it: only a failed receive (ENOBUFS: messages
// were lost) or an interrupted listing does, and the next subscription
// lists every link again.
func (m *Manager) watchOnce(ctx context.Context, kick chan struct{}) (string, error) {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	failed := make(chan error, 1)
	var ignored atomic.Int64
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			// The library drops a message not from the kernel (another
			// subscriber sending to the link group) or a netlink error
			// answer and goes on: so does the watch. A failed receive
			// (the library then closes the channel) or an interrupted
			// listing ends this subscription.
			if !errors.Is(err, netlink.ErrDumpInterrupted) && !strings.HasPrefix(err.Error(), "Receive failed") {
				ignored.Add(1)
				return
			}
			select {
			case failed <- err:
			default:
			}
		},
	}
	if err := InNamespace(m.ns, func() error { return netlink.LinkSubscribeWithOptions(updates, done, opts) }); err != nil {
		return "", fmt.Errorf("cannot subscribe to link changes: %w", err)
	}
	defer func() {
		close(done)
		for range updates {
		}
		if n := ignored.Load(); n > 0 {
			m.log.Debug("link watch: messages ignored", "count", n)
		}
	}()
	now, err := existingLinks(m.ns)
	if err != nil {
		return "cannot list the links: " + err.Error(), nil
	}
	for _, u := range now {
		if m.linkChanged(u) {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-failed:
			return err.Error(), nil
		case u, ok := <-updates:
			if !ok {
				select {
				case err := <-failed:
					return err.Error(), nil
				default:
					return "the subscription ended", nil
				}
			}
			if m.linkChanged(u) {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
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
	var ppp []*PPPoE
	carrier := map[string]bool{} // for the resolv.conf
	var changed []string         // carrier changes to report
	w := &m.pending
	for _, up := range m.cfg.Uplinks {
		link := up.LinkName()
		r := m.runners[link]
		switch {
		case name == link && deleted:
			if m.applied {
				w.add(link, "link "+link+" went away", true)
			}
			m.carrier[link] = false
			carrier[link] = false
		case name == link:
			now := carrierUp(a)
			if now != m.carrier[link] {
				m.carrier[link] = now
				carrier[link] = now
				changed = append(changed, link)
				if now && m.applied && r != nil && r.ifindex == int(idx) && (r.dhcp != nil || r.u.IPv4.Method == MethodStatic || r.v6 != nil) {
					w.add(link, "carrier up on "+link, false)
					w.carrier = appendNew(w.carrier, link)
				}
			}
			if m.applied {
				switch {
				case m.lastErr[link] != nil:
					w.add(link, "link "+link+" changed after: "+m.lastErr[link].Error(), true)
				case r == nil:
					w.add(link, "link "+link+" appeared", true)
				case r.ifindex != int(idx):
					w.add(link, "link "+link+" was made anew", true)
				case r.exited():
					w.add(link, "the client of "+link+" stopped", true)
				}
			}
		case name == up.Parent && m.applied && (m.lastErr[link] != nil || r == nil || deleted):
			verb := "changed"
			if deleted {
				verb = "went away"
			}
			w.add(link, "parent "+name+" of "+link+" "+verb, true)
		}
	}
	kick := !w.empty()
	if deleted && strings.HasPrefix(name, "ppp") {
		for _, r := range m.runners {
			if r.ppp != nil {
				ppp = append(ppp, r.ppp)
			}
		}
	}
	m.mu.Unlock()
	for link, up := range carrier {
		if err := m.dns.SetCarrier(link, up); err != nil {
			m.log.Warn("cannot write the DNS servers", "err", err)
		}
	}
	// After the file: whoever hears of the carrier finds it in line.
	for _, link := range changed {
		m.emit(UplinkEvent{Uplink: link, Kind: "link", Detail: carrierText(carrier[link]), Time: time.Now()})
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

func carrierText(up bool) string {
	if up {
		return "carrier up"
	}
	return "carrier down"
}
