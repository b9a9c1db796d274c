package network

import (
	"context"
	"errors"
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
// until it expires) and puts a static uplink's addressing back; when a
// ppp link goes, its session is marked down. Each such re-apply is one
// Reapply (trigger "link-watch") run through ManagerOptions.Reapply.
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

	for {
		updates := make(chan netlink.LinkUpdate, 256)
		done := make(chan struct{})
		failed := make(chan error, 1)
		opts := netlink.LinkSubscribeOptions{
			ListExisting: true,
			// The library goes on after every error but a failed receive,
			// which closes updates. A dump cut short by a change may have
			// missed a link: list again. A message from a process rather
			// than the kernel ("Wrong sender portid") or one that does not
			// decode is skipped. Such a message is, among others, another
			// subscriber's ListExisting request, which the library sends
			// to the link group as well as to the kernel: subscribing again
			// for it made two agents on one host wake each other about a
			// thousand times a second.
			ErrorCallback: func(err error) {
				if !errors.Is(err, netlink.ErrDumpInterrupted) {
					return
				}
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
				if now && m.applied && r != nil && r.ifindex == int(idx) && (r.dhcp != nil || r.u.IPv4.Method == MethodStatic) {
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
