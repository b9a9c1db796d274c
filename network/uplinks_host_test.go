package network

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// These tests run the Manager in the wire's box namespace (see
// ispwire_host_test.go): real links, real dnsmasq. They need root. The host kernel
// may lack 8021q; the virtual board's tests (lab tag) cover real VLANs.

func newTestManager(t testing.TB, l *ispWire, opts ...func(*ManagerOptions)) (*Manager, chan UplinkEvent) {
	t.Helper()
	events := make(chan UplinkEvent, 1000)
	o := ManagerOptions{
		Handle: l.hBox, Namespace: &l.box, DHCPRetransmit: time.Second,
		OnEvent: func(e UplinkEvent) {
			select {
			case events <- e:
			default:
			}
		},
	}
	for _, f := range opts {
		f(&o)
	}
	m := NewManager(o)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- m.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-watched; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch: %v", err)
		}
		m.Close()
	})
	return m, events
}

func iptvUplink() Uplink {
	return Uplink{Parent: boxIf, IPv4: IPv4{
		Method: MethodDHCP, VendorClass: "IPTV_TEST", Options: map[string]string{"125": "hex:00000de9"}, RouteMetric: 100,
	}}
}

// waitDHCP waits for a dhcp event of link in state s.
func waitDHCP(t testing.TB, events chan UplinkEvent, link string, s State, timeout time.Duration) UplinkEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if e.Kind == "dhcp" && e.Uplink == link && e.DHCP.State == s {
				return e
			}
		case <-deadline:
			t.Fatalf("no dhcp %s event on %s in %s", s, link, timeout)
		}
	}
}

func TestHostManagerDHCP(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq(t)
	m, events := newTestManager(t, l)

	start := time.Now()
	res, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{iptvUplink()}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Uplinks, ",") != boxIf || len(res.Started) != 1 {
		t.Errorf("result %+v", res)
	}
	e := waitDHCP(t, events, boxIf, StateBound, 10*time.Second)
	t.Logf("apply to bound lease: %s", time.Since(start).Round(time.Millisecond))
	if got := d.record(t, 5*time.Second); !strings.Contains(got, "vendor=IPTV_TEST") {
		t.Errorf("dnsmasq recorded %q", got)
	}
	st := m.Status()
	if len(st) != 1 || !st[0].Up || st[0].DHCP == nil || st[0].DHCP.Lease == nil {
		t.Fatalf("status %+v", st)
	}
	if s := st[0].DHCP; s.Sent["60"] != "IPTV_TEST" || s.Sent["125"] != "hex:00000de9" || !strings.HasPrefix(s.Sent["61"], "hex:01") {
		t.Errorf("options sent %v", s.Sent)
	}
	if lt := st[0].DHCP.Lease; !lt.ExpiresAt.Equal(e.DHCP.Lease.ExpiresAt()) || !lt.RenewAt.Before(lt.ExpiresAt) {
		t.Errorf("lease times %+v", lt)
	}
	if got := strings.Join(l.boxRoutes(t), "|"); got != leaseRoutes {
		t.Errorf("routes %s, want %s", got, leaseRoutes)
	}
	// What the API answers decodes back (the CLI's side).
	v, err := m.View()
	must(t, err)
	raw, err := json.Marshal(v)
	must(t, err)
	var back View
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("View does not decode: %v\n%s", err, raw)
	}
	if back.Uplinks[0].DHCP.State != StateBound || back.Uplinks[0].DHCP.Lease.Address != e.DHCP.Lease.Address || len(back.Links) < 2 || len(back.Routes) != 2 {
		t.Errorf("view %s", raw)
	}

	// Applying the same table again changes nothing.
	res, err = m.Apply(context.Background(), Config{Uplinks: []Uplink{iptvUplink()}})
	if err != nil || len(res.Started) != 0 || len(res.Removed) != 0 {
		t.Errorf("second apply: %+v, %v", res, err)
	}

	// Carrier flap on the ISP side: the lease stays; carrier return
	// renews at once.
	must(t, l.hISP.LinkSetDown(l.ispLink))
	waitLinkEvent(t, events, boxIf, "carrier down")
	if len(l.boxAddrs(t)) != 1 {
		t.Errorf("address gone on carrier loss: %v", l.boxAddrs(t))
	}
	must(t, l.hISP.LinkSetUp(l.ispLink))
	waitDHCP(t, events, boxIf, StateRenewing, 5*time.Second)
	waitDHCP(t, events, boxIf, StateBound, 10*time.Second)

	// renew by hand
	if err := m.Renew(boxIf); err != nil {
		t.Fatal(err)
	}
	waitDHCP(t, events, boxIf, StateRenewing, 5*time.Second)
	waitDHCP(t, events, boxIf, StateBound, 10*time.Second)
	if err := m.Renew("nope0"); !errors.Is(err, ErrNoUplink) {
		t.Errorf("renew of an unknown link: %v", err)
	}

	// The uplink leaves the table: its client stops, its address and
	// routes go; the parent link (not the agent's) stays.
	res, err = m.Apply(context.Background(), Config{})
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("apply of an empty table: %+v, %v", res, err)
	}
	if as := l.boxAddrs(t); len(as) != 0 {
		t.Errorf("addresses left: %v", as)
	}
	if rs := l.boxRoutes(t); len(rs) != 0 {
		t.Errorf("routes left: %v", rs)
	}
	if _, err := l.hBox.LinkByName(boxIf); err != nil {
		t.Errorf("the parent link went: %v", err)
	}
}

func waitLinkEvent(t testing.TB, events chan UplinkEvent, link, detail string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == "link" && e.Uplink == link && e.Detail == detail {
				return
			}
		case <-deadline:
			t.Fatalf("no %q event on %s", detail, link)
		}
	}
}

func TestHostManagerStatic(t *testing.T) {
	l := newISPWire(t)
	m, _ := newTestManager(t, l)
	u := Uplink{Parent: boxIf, MTU: 1400, MAC: "02:00:00:45:00:07", IPv4: IPv4{Method: MethodStatic, Address: "10.45.0.7/24", Gateway: "10.45.0.1", RouteMetric: 300}}
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.boxRoutes(t), "|"); got != "0.0.0.0/0 via 10.45.0.1 metric 300|10.45.0.0/24 metric 300" {
		t.Errorf("routes %s", got)
	}
	link, err := l.hBox.LinkByName(boxIf)
	must(t, err)
	if link.Attrs().MTU != 1400 || link.Attrs().HardwareAddr.String() != u.MAC {
		t.Errorf("mtu %d, address %s", link.Attrs().MTU, link.Attrs().HardwareAddr)
	}
	if st := m.Status(); len(st) != 1 || st[0].Method != MethodStatic {
		t.Errorf("status %+v", st)
	}
	// Static to off: the address goes.
	u.IPv4 = IPv4{Method: MethodOff}
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatal(err)
	}
	if as := l.boxAddrs(t); len(as) != 0 {
		t.Errorf("addresses left: %v", as)
	}
}

// TestHostManagerRefuses: bad tables change nothing and name the field.
func TestHostManagerRefuses(t *testing.T) {
	l := newISPWire(t)
	m, _ := newTestManager(t, l)
	before := linkNames(t, l.hBox)
	for _, tc := range []struct {
		name string
		u    Uplink
		key  string
	}{
		{"unknown parent", Uplink{Parent: "eth9", IPv4: IPv4{Method: MethodOff}}, "uplink[0].parent"},
		{"vlan 0", Uplink{Parent: boxIf, VLAN: ptr(0), IPv4: IPv4{Method: MethodOff}}, "uplink[0].vlan"},
		{"vlan 4095", Uplink{Parent: boxIf, VLAN: ptr(4095), IPv4: IPv4{Method: MethodOff}}, "uplink[0].vlan"},
		{"long name", Uplink{Name: "iptv-uplink-long", Parent: boxIf, VLAN: ptr(45), IPv4: IPv4{Method: MethodOff}}, "uplink[0].name"},
		{"bad hex", Uplink{Parent: boxIf, IPv4: IPv4{Method: MethodDHCP, VendorClass: "hex:zz"}}, "uplink[0].ipv4.vendor_class"},
		{"pppoe without user", Uplink{Parent: boxIf, VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE}}, "uplink[0].ipv4.user"},
		{"untagged with another name", Uplink{Name: "wan", Parent: boxIf, IPv4: IPv4{Method: MethodOff}}, "uplink[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{tc.u}})
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an *InvalidError", err)
			}
			if ie.Problems[0].Key != tc.key {
				t.Errorf("problems %v, want one at %s", ie.Problems, tc.key)
			}
			if !strings.Contains(err.Error(), "network."+tc.key+": ") {
				t.Errorf("message %q does not name network.%s", err, tc.key)
			}
			if got := linkNames(t, l.hBox); got != before {
				t.Errorf("links changed: %s, was %s", got, before)
			}
			if len(m.Status()) != 0 {
				t.Errorf("a refused table took effect: %+v", m.Status())
			}
		})
	}
}

func linkNames(t testing.TB, h *netlink.Handle) string {
	t.Helper()
	ls, err := h.LinkList()
	must(t, err)
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name+"/"+l.Attrs().Alias)
	}
	return strings.Join(names, " ")
}

// TestHostManagerOwnedLinks: a link the agent marked as its own is
// removed when its uplink is not in the table (after a restart too: the
// mark is in the kernel); a link not marked is left alone. A VLAN
// uplink either works or, on a kernel without 8021q, fails with the
// typed error and its hint.
func TestHostManagerOwnedLinks(t *testing.T) {
	l := newISPWire(t)
	for _, name := range []string{"old0", "foreign0"} {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
		must(t, l.hBox.LinkAdd(v))
	}
	old, err := l.hBox.LinkByName("old0")
	must(t, err)
	must(t, l.hBox.LinkSetAlias(old, ownerAlias("old0")))

	m, _ := newTestManager(t, l)
	u := Uplink{Parent: boxIf, VLAN: ptr(45), Priority: ptr(6), MTU: 1400, IPv4: IPv4{Method: MethodOff}}
	res, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}})
	if strings.Join(res.Removed, ",") != "old0" {
		t.Errorf("removed %v, want old0", res.Removed)
	}
	if _, err := l.hBox.LinkByName("foreign0"); err != nil {
		t.Errorf("a link not the agent's was removed: %v", err)
	}
	var le *LinkError
	switch {
	case errors.Is(err, ErrNoVLANSupport):
		if !errors.As(err, &le) || le.Hint() == "" || !strings.Contains(err.Error(), "uplink0.45") {
			t.Errorf("error %v without the link or a hint", err)
		}
		t.Logf("this kernel has no 8021q: %v (hint: %s)", err, le.Hint())
		if st := m.Status(); len(st) != 1 || st[0].Up || !strings.Contains(st[0].Detail, "8021q") {
			t.Errorf("status %+v", st)
		}
	case err != nil:
		t.Fatal(err)
	default:
		checkVLAN(t, l.hBox, "uplink0.45", 45, 6, 1400)
	}
}

// checkVLAN checks a VLAN link the agent made.
func checkVLAN(t testing.TB, h *netlink.Handle, name string, id, prio, mtu int) {
	t.Helper()
	link, err := h.LinkByName(name)
	must(t, err)
	v, ok := link.(*netlink.Vlan)
	if !ok {
		t.Fatalf("%s is a %s, not a vlan", name, link.Type())
	}
	if v.VlanId != id || v.MTU != mtu || v.Alias != ownerAlias(name) {
		t.Errorf("%s: id %d mtu %d alias %q", name, v.VlanId, v.MTU, v.Alias)
	}
	for skb := range uint32(8) {
		if v.EgressQosMap[skb] != uint32(prio) {
			t.Errorf("%s: egress map %v, want every priority to %d", name, v.EgressQosMap, prio)
			break
		}
	}
}

// TestHostWatchEnds: Watch leaves no goroutine behind (its subscription
// and its re-apply loop) when its context ends.
func TestHostWatchEnds(t *testing.T) {
	l := newISPWire(t)
	for range 3 {
		m := NewManager(ManagerOptions{Handle: l.hBox, Namespace: &l.box})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Watch(ctx) }()
		time.Sleep(50 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Watch: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not end")
		}
	}
}

// BenchmarkHostApplyBound is the time from Manager.Apply to a bound lease
// against dnsmasq over a veth (what `boxagent net apply` does in the
// agent: check the table and the parent, bring the link up, open the
// socket, DISCOVER … ACK, address and routes set), beside busybox udhcpc
// -B doing the exchange in the same namespace in the same run. Each
// round starts from the uplink with method "off". Needs root.
//
//	go test -run '^$' -bench HostApplyBound -benchtime 20x ./network
func BenchmarkHostApplyBound(b *testing.B) {
	l := newISPWire(b)
	l.startDnsmasq(b)
	m, events := newTestManager(b, l)
	dhcp := Config{Uplinks: []Uplink{iptvUplink()}}
	off := Config{Uplinks: []Uplink{{Parent: boxIf, IPv4: IPv4{Method: MethodOff}}}}
	ctx := context.Background()

	b.Run("boxagent", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			if _, err := m.Apply(ctx, off); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := m.Apply(ctx, dhcp); err != nil {
				b.Fatal(err)
			}
			waitDHCP(b, events, boxIf, StateBound, 10*time.Second)
		}
	})
	b.Run("udhcpc", func(b *testing.B) {
		if _, err := m.Apply(ctx, off); err != nil {
			b.Fatal(err)
		}
		if _, err := exec.LookPath("busybox"); err != nil {
			b.Skipf("needs busybox: %v", err)
		}
		for b.Loop() {
			cmd := exec.Command("ip", "netns", "exec", l.boxName, "busybox", "udhcpc", "-B", "-n", "-q", "-V", "IPTV_TEST", "-i", boxIf, "-s", "/bin/true")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
		}
	})
}

// TestHostManagerLateParent: at boot, an uplink whose parent is not there
// yet waits for it; the link watch applies it when the parent appears.
func TestHostManagerLateParent(t *testing.T) {
	l := newISPWire(t)
	m, events := newTestManager(t, l)
	u := Uplink{Parent: "late0", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.9/24"}}
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply with a missing parent: %v, want ErrInvalid", err)
	}
	if _, err := m.ApplyAtBoot(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatalf("ApplyAtBoot: %v", err)
	}
	if st := m.Status(); len(st) != 1 || st[0].Up || st[0].Detail != `waiting for its parent link "late0"` {
		t.Fatalf("status %+v", st)
	}
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "late0"}, PeerName: "late0p"}
	must(t, l.hBox.LinkAdd(v))
	peer, err := l.hBox.LinkByName("late0p")
	must(t, err)
	must(t, l.hBox.LinkSetUp(peer))
	waitLinkEvent(t, events, "late0", "carrier up")
	link, err := l.hBox.LinkByName("late0")
	must(t, err)
	deadline := time.Now().Add(5 * time.Second)
	for {
		as, err := l.hBox.AddrList(link, netlink.FAMILY_V4)
		must(t, err)
		// The status is up once the re-apply has ended, which may be
		// after the address is in place.
		if len(as) == 1 && as[0].IPNet.String() == "192.0.2.9/24" && m.Status()[0].Up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("late0 not up with its address after it appeared: %v; status %+v", as, m.Status())
		}
		time.Sleep(20 * time.Millisecond) // the re-apply runs on the watch's goroutine
	}
}
