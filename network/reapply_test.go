package network

import (
	"context"
	"net/netip"
	"testing"
)

// TestLeaseEventReapplies: the first lease of a client is part of its
// apply; a changed address, a lost lease and a new lease after a lost
// one are each a "dhcp" re-apply, journalled with what changed.
func TestLeaseEventReapplies(t *testing.T) {
	got := make(chan Reapply, 10)
	results := make(chan any, 10)
	m := NewManager(ManagerOptions{Reapply: func(r Reapply, do func(context.Context) (any, error)) {
		res, _ := do(context.Background())
		results <- res
		got <- r
	}})
	lease := func(a string) *Lease { return &Lease{Address: netip.MustParsePrefix(a)} }
	for _, e := range []Event{
		{State: StateSelecting},
		{State: StateBound, Lease: lease("10.45.0.50/24")},
		{State: StateRenewing, Lease: lease("10.45.0.50/24")},
		{State: StateBound, Lease: lease("10.45.0.50/24")},
	} {
		m.leaseEvent("eth0.45", e)
	}
	select {
	case r := <-got:
		t.Fatalf("re-apply without a change: %+v", r)
	default:
	}
	for _, c := range []struct {
		e      Event
		reason string
	}{
		{Event{State: StateBound, Lease: lease("10.45.0.51/24")}, "the DHCP lease of eth0.45 changed its address from 10.45.0.50/24 to 10.45.0.51/24"},
		{Event{State: StateInit, Err: ErrLeaseExpired}, "the DHCP lease of eth0.45 ended: 10.45.0.51/24 removed (" + ErrLeaseExpired.Error() + ")"},
		{Event{State: StateSelecting}, ""},
		{Event{State: StateBound, Lease: lease("10.45.0.52/24")}, "a new DHCP lease on eth0.45: 10.45.0.52/24"},
	} {
		m.leaseEvent("eth0.45", c.e)
		if c.reason == "" {
			continue
		}
		r := <-got
		if r.Trigger != TriggerDHCP || r.Reason != c.reason || len(r.Links) != 1 || r.Links[0] != "eth0.45" {
			t.Errorf("re-apply %+v, want reason %q", r, c.reason)
		}
		if ch, ok := (<-results).(LeaseChange); !ok || ch.Link != "eth0.45" || ch.State != c.e.State {
			t.Errorf("result %+v", ch)
		}
	}
	select {
	case r := <-got:
		t.Errorf("one re-apply too many: %+v", r)
	default:
	}
}
