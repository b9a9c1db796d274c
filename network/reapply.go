package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Reapply is something the manager does to the uplinks on its own, not
// asked by anyone: the link watch applies an uplink again after its link
// or parent came back, renews a lease or puts static addressing back
// when a carrier returns (trigger "link-watch"); a DHCP client's lease
// changed the uplink's address or lost it (trigger "dhcp"). The agent
// journals each as an operation, so that `boxagent history` tells why an
// address changed while nobody touched the box.
type Reapply struct {
	Trigger string   `json:"trigger"` // TriggerLinkWatch or TriggerDHCP
	Reason  string   `json:"reason"`  // what was seen: "carrier up on eth0.45"
	Links   []string `json:"links"`   // the uplinks concerned
}

// The triggers of a Reapply.
const (
	TriggerLinkWatch = "link-watch"
	TriggerDHCP      = "dhcp"
)

// ReapplyFunc runs do for r and waits for it, e.g. as a journalled
// operation (do gets that operation's context). It must run do at most
// once; it may skip it when the agent is stopping.
type ReapplyFunc func(r Reapply, do func(ctx context.Context) (any, error))

// ReapplyResult is what a link-watch re-apply did.
type ReapplyResult struct {
	Applied  *ApplyResult `json:"applied,omitempty"`  // when uplinks were applied again
	Renewed  []string     `json:"renewed,omitempty"`  // DHCP clients asked to renew at once
	Restored []string     `json:"restored,omitempty"` // static uplinks whose address and routes were put back
}

// LeaseChange is the result of a "dhcp" re-apply: the client already
// applied it (address, routes, resolv.conf); the record says what it did.
type LeaseChange struct {
	Link  string       `json:"link"`
	From  netip.Prefix `json:"from,omitzero"`
	To    netip.Prefix `json:"to,omitzero"` // absent: the lease was lost
	State State        `json:"state"`
	Error string       `json:"error,omitempty"`
}

// reapplyWork is what the link watch saw since its last re-apply.
type reapplyWork struct {
	seen    []seenChange
	carrier []string // uplinks whose carrier returned
}

// seenChange is one reason to re-apply an uplink.
type seenChange struct {
	link, reason string
	reconcile    bool // the uplink needs applying again (else: a carrier returned)
}

func (w *reapplyWork) add(link, reason string, reconcile bool) {
	c := seenChange{link, reason, reconcile}
	if !slices.Contains(w.seen, c) {
		w.seen = append(w.seen, c)
	}
}

func (w *reapplyWork) empty() bool { return len(w.seen) == 0 }

func (w *reapplyWork) reconcile() bool {
	return slices.ContainsFunc(w.seen, func(c seenChange) bool { return c.reconcile })
}

func (w *reapplyWork) reapply() Reapply {
	r := Reapply{Trigger: TriggerLinkWatch}
	var reasons []string
	for _, c := range w.seen {
		r.Links = appendNew(r.Links, c.link)
		reasons = append(reasons, c.reason)
	}
	r.Reason = strings.Join(reasons, "; ")
	return r
}

// stillNeeded keeps the changes that still call for applying an uplink
// again: a link update seen while an apply was putting the uplink in
// place (before its runner was recorded) is no reason once that apply
// is done. Carrier returns are kept.
func (m *Manager) stillNeeded(w reapplyWork) reapplyWork {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	out := reapplyWork{carrier: w.carrier}
	for _, c := range w.seen {
		if !c.reconcile || m.stale(c.link) {
			out.seen = append(out.seen, c)
		}
	}
	return out
}

// stale says whether the uplink of link is not in place as applied:
// never applied, failed, its client gone, or its link missing or made
// anew. Callers hold applyMu.
func (m *Manager) stale(link string) bool {
	m.mu.Lock()
	r, failed := m.runners[link], m.lastErr[link] != nil
	m.mu.Unlock()
	if r == nil || failed || r.exited() {
		return true
	}
	l, err := linkByName(m.nl, link)
	return err != nil || l == nil || l.Attrs().Index != r.ifindex
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// runReapply hands do to ManagerOptions.Reapply (or runs it) and reports
// the re-apply as an event.
func (m *Manager) runReapply(ctx context.Context, r Reapply, do func(context.Context) (any, error)) {
	m.log.Info("re-applying", "trigger", r.Trigger, "reason", r.Reason)
	for _, l := range r.Links {
		m.emit(UplinkEvent{Uplink: l, Kind: "reapply", Detail: r.Trigger + ": " + r.Reason, Time: time.Now()})
	}
	if m.o.Reapply != nil {
		m.o.Reapply(r, do)
		return
	}
	if _, err := do(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("cannot re-apply", "reason", r.Reason, "err", err)
	}
}

// reapplyNow does what the link watch saw called for.
func (m *Manager) reapplyNow(ctx context.Context, w reapplyWork) (any, error) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	applied := m.applied
	m.mu.Unlock()
	var res ReapplyResult
	if !applied {
		return res, nil
	}
	var errs []error
	if w.reconcile() {
		a, err := m.reconcile(ctx, false)
		res.Applied = &a
		errs = append(errs, err)
	}
	for _, link := range w.carrier {
		m.mu.Lock()
		r, up := m.runners[link], m.carrier[link]
		m.mu.Unlock()
		if r != nil && up {
			r.v6.carrierBack()
		}
		switch {
		case r == nil || !up:
			// Gone again, or the carrier dropped once more: the next
			// change brings its own re-apply.
		case r.dhcp != nil:
			r.dhcp.Renew()
			res.Renewed = append(res.Renewed, link)
		case r.u.IPv4.Method == MethodStatic:
			// The kernel keeps the address over a carrier loss, but a
			// link set down and up by someone loses its routes.
			if err := applyStatic(m.nl, r.u, m.dns); err != nil {
				errs = append(errs, fmt.Errorf("cannot put back %s: %w", link, err))
				continue
			}
			res.Restored = append(res.Restored, link)
		}
	}
	return res, errors.Join(errs...)
}

// leaseEvent follows the address of a DHCP uplink's lease: a lease that
// changes the address (after a rebind, or a new discovery) or is lost
// (expired, refused) is a "dhcp" re-apply. The first lease of a client
// is part of the apply that started it.
func (m *Manager) leaseEvent(link string, e Event) {
	var now netip.Prefix
	if e.Lease != nil {
		now = e.Lease.Address
	}
	m.mu.Lock()
	was, known := m.leases[link]
	if known || now.IsValid() {
		m.leases[link] = now
	}
	m.mu.Unlock()
	if !known || was == now {
		return
	}
	ch := LeaseChange{Link: link, From: was, To: now, State: e.State}
	if e.Err != nil {
		ch.Error = e.Err.Error()
	}
	var reason string
	switch {
	case !now.IsValid():
		reason = fmt.Sprintf("the DHCP lease of %s ended: %s removed", link, was)
		if e.Err != nil {
			reason += " (" + e.Err.Error() + ")"
		}
	case !was.IsValid():
		reason = fmt.Sprintf("a new DHCP lease on %s: %s", link, now)
	default:
		reason = fmt.Sprintf("the DHCP lease of %s changed its address from %s to %s", link, was, now)
	}
	// From the client's goroutine: journalling must not hold it up.
	go m.runReapply(context.Background(), Reapply{Trigger: TriggerDHCP, Reason: reason, Links: []string{link}},
		func(context.Context) (any, error) { return ch, nil })
}
