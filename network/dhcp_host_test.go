package network

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// These tests run the client against a real dnsmasq over a veth pair
// between two network namespaces (see ispwire_host_test.go). They need root.

func iptvConfig(dir string) DHCPConfig {
	return DHCPConfig{
		VendorClass: []byte("IPTV_TEST"),
		ClientIDMAC: true,
		Options:     map[uint8][]byte{125: {0, 0, 0x0d, 0xe9, 4, 1, 2, 3, 4}},
		RouteMetric: 100,
		ResolvConf:  filepath.Join(dir, "run", "resolv.conf"),
		Retransmit:  time.Second,
	}
}

// leaseRoutes is the box's routes with a lease, in the kernel's order.
const leaseRoutes = "0.0.0.0/0 via 10.45.0.1 metric 100|10.45.0.0/24 metric 100"

func TestHostDHCPLease(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq(t)
	cfg := iptvConfig(l.dir)
	_, events := l.startClient(t, cfg)

	e := waitState(t, events, StateBound, 10*time.Second)
	if e.Err != nil {
		t.Fatalf("bound with error: %v", e.Err)
	}
	lease := e.Lease
	if !lease.Address.Addr().IsValid() || lease.Address.Bits() != 24 || lease.Router != netip.MustParseAddr("10.45.0.1") || lease.Duration != 2*time.Minute {
		t.Errorf("lease %+v", lease)
	}

	// dnsmasq saw our vendor class and client id.
	want := "add " + lease.Address.Addr().String() + " vendor=IPTV_TEST clientid=01:" + boxMAC.String()
	if got := d.record(t, 5*time.Second); got != want {
		t.Errorf("dnsmasq recorded %q, want %q", got, want)
	}

	// The address carries the lease's lifetime; routes carry the metric.
	as := l.boxAddrs(t)
	if len(as) != 1 || as[0].IPNet.String() != lease.Address.String() {
		t.Fatalf("addresses %v, want %s", as, lease.Address)
	}
	if as[0].ValidLft < 100 || as[0].ValidLft > 120 || as[0].PreferedLft > 120 {
		t.Errorf("address lifetimes valid %d preferred %d, want about 120 s", as[0].ValidLft, as[0].PreferedLft)
	}
	if got := strings.Join(l.boxRoutes(t), "|"); got != leaseRoutes {
		t.Errorf("routes %s, want %s", got, leaseRoutes)
	}
	b, err := os.ReadFile(cfg.ResolvConf)
	must(t, err)
	if !strings.Contains(string(b), "\nnameserver 10.45.0.1\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
}

func TestHostDHCPWrongVendorClass(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq(t)
	cfg := iptvConfig(l.dir)
	cfg.VendorClass = []byte("SOMETHING_ELSE")
	cfg.Retransmit = 500 * time.Millisecond
	cfg.OfferTimeout = 2 * time.Second
	c, events := l.startClient(t, cfg)

	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case e := <-events:
			if e.State != StateSelecting {
				t.Fatalf("event %v, want selecting only", e)
			}
			got = errors.Is(e.Err, ErrNoOffer)
		case <-deadline:
			t.Fatalf("no ErrNoOffer in 5 s")
		}
	}
	if st := c.Status(); !strings.HasPrefix(st.Err.Error(), "no DHCP offer: the server ignored us; check vendor_class") {
		t.Errorf("status %v", st)
	}
	if _, err := d.waitLine("ignored", time.Second); err != nil {
		t.Errorf("dnsmasq did not say it ignored us: %v", err)
	}
	if len(d.records) != 0 || len(l.boxAddrs(t)) != 0 {
		t.Errorf("a lease without the vendor class: %v", l.boxAddrs(t))
	}
}

// TestHostDHCPRenewRebindExpire runs the client on a fake clock against
// the real server: the renewal at T1 is real, then the server dies and
// the lease runs out through REBINDING without minutes of waiting.
func TestHostDHCPRenewRebindExpire(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq(t)
	clock := newFakeClock()
	cfg := iptvConfig(l.dir)
	cfg.Clock = clock
	_, events := l.startClientFake(t, cfg)

	e := waitState(t, events, StateBound, 10*time.Second)
	t0 := e.Lease.Acquired
	d.record(t, 5*time.Second) // add

	// T1 (60 s into a 2-minute lease): a real renewal, answered by
	// dnsmasq (nothing else could ACK).
	if e = clock.advanceTo(t, events); e.State != StateRenewing || !clock.Now().Equal(t0.Add(time.Minute)) {
		t.Fatalf("at %v: %v, want renewing at T1", clock.Now().Sub(t0), e)
	}
	e = waitState(t, events, StateBound, 5*time.Second)
	if !e.Lease.Acquired.Equal(t0.Add(time.Minute)) {
		t.Errorf("renewed lease acquired %v after the first", e.Lease.Acquired.Sub(t0))
	}

	// The server dies.
	d.kill()
	t1 := e.Lease.Acquired
	for _, want := range []State{StateRenewing, StateRebinding, StateInit} {
		if e = clock.advanceTo(t, events); e.State != want {
			t.Fatalf("at %v: %v, want %s", clock.Now().Sub(t1), e, want)
		}
	}
	if !errors.Is(e.Err, ErrLeaseExpired) || !clock.Now().Equal(t1.Add(2*time.Minute)) {
		t.Errorf("at %v: %v, want expiry at 2 min", clock.Now().Sub(t1), e)
	}
	if as := l.boxAddrs(t); len(as) != 0 {
		t.Errorf("addresses after expiry: %v", as)
	}
	if rs := l.boxRoutes(t); len(rs) != 0 {
		t.Errorf("routes after expiry: %v", rs)
	}
	b, err := os.ReadFile(cfg.ResolvConf)
	must(t, err)
	if strings.Contains(string(b), "nameserver") {
		t.Errorf("resolv.conf after expiry:\n%s", b)
	}
}

// startClientFake is startClient with the timer hook a fake clock needs.
func (l *ispWire) startClientFake(t *testing.T, cfg DHCPConfig) (*DHCPClient, chan Event) {
	conn, err := OpenRawConn(l.box, l.boxLink.Attrs().Index)
	must(t, err)
	cfg.Link = boxIf
	events := make(chan Event, 1000)
	c := NewDHCPClient(l.hBox, conn, cfg, func(e Event) { events <- e })
	fc := cfg.Clock.(*fakeClock)
	c.timerDone = func() { fc.handled <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return c, events
}

func TestHostDHCPCarrierFlap(t *testing.T) {
	l := newISPWire(t)
	l.startDnsmasq(t)
	c, events := l.startClient(t, iptvConfig(l.dir))
	bound := waitState(t, events, StateBound, 10*time.Second).Lease

	carrier := make(chan bool, 10)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() {
		watched <- WatchCarrier(ctx, l.box, l.boxLink.Attrs().Index, func(up bool) {
			if up {
				c.Renew()
			}
			carrier <- up
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-watched; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchCarrier: %v", err)
		}
	})
	wantCarrier := func(want bool) {
		t.Helper()
		select {
		case up := <-carrier:
			if up != want {
				t.Fatalf("carrier %v, want %v", up, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no carrier change to %v", want)
		}
	}
	wantCarrier(true)

	must(t, l.hISP.LinkSetDown(l.ispLink))
	wantCarrier(false)
	if as := l.boxAddrs(t); len(as) != 1 || as[0].IPNet.String() != bound.Address.String() {
		t.Errorf("addresses without carrier: %v, want %s kept", as, bound.Address)
	}
	must(t, l.hISP.LinkSetUp(l.ispLink))
	wantCarrier(true)
	waitState(t, events, StateRenewing, 5*time.Second)
	e := waitState(t, events, StateBound, 5*time.Second)
	if e.Lease.Address != bound.Address || !e.Lease.Acquired.After(bound.Acquired) {
		t.Errorf("after the flap %+v, want %s renewed", e.Lease, bound.Address)
	}
	if got := strings.Join(l.boxRoutes(t), "|"); got != leaseRoutes {
		t.Errorf("routes %s, want %s", got, leaseRoutes)
	}
}

func TestHostStatic(t *testing.T) {
	l := newISPWire(t)
	u := Uplink{Parent: boxIf, IPv4: IPv4{
		Method: MethodStatic, Address: "10.45.0.7/24", Gateway: "10.45.0.1", DNS: []string{"10.45.0.1", "192.0.2.53"}, RouteMetric: 300,
	}}
	if err := (Config{Uplinks: []Uplink{u}}).Validate(); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(l.dir, "resolv.conf")
	must(t, ApplyStatic(l.hBox, u, resolv))
	must(t, ApplyStatic(l.hBox, u, resolv)) // again: nothing changes, no error

	as := l.boxAddrs(t)
	if len(as) != 1 || as[0].IPNet.String() != "10.45.0.7/24" || uint32(as[0].ValidLft) != 0xffffffff && as[0].ValidLft != 0 {
		t.Errorf("addresses %+v, want 10.45.0.7/24 forever", as)
	}
	if got, want := l.boxRoutes(t), []string{"0.0.0.0/0 via 10.45.0.1 metric 300", "10.45.0.0/24 metric 300"}; !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	rs, err := l.hBox.RouteList(l.boxLink, netlink.FAMILY_V4)
	must(t, err)
	for _, r := range rs {
		if r.Protocol != 4 { // RTPROT_STATIC
			t.Errorf("route %v protocol %d, want static", r, r.Protocol)
		}
	}
	b, err := os.ReadFile(resolv)
	must(t, err)
	if want := "nameserver 10.45.0.1\nnameserver 192.0.2.53\n"; !strings.HasSuffix(string(b), want) {
		t.Errorf("resolv.conf:\n%s", b)
	}
}

// TestHostLifetimeEndsAddress shows why the lease's address carries its
// lifetime: with no agent left to remove it, the kernel takes the
// address away when the lease would have expired, and the routes with it.
func TestHostLifetimeEndsAddress(t *testing.T) {
	l := newISPWire(t)
	updates := make(chan netlink.AddrUpdate, 100)
	done := make(chan struct{})
	defer close(done)
	must(t, InNamespace(l.box, func() error { return netlink.AddrSubscribe(updates, done) }))

	a := applied{
		link: l.boxLink, addr: netip.MustParsePrefix("10.45.0.60/24"), router: netip.MustParseAddr("10.45.0.1"),
		metric: 100, proto: 16, lifetime: 2 * time.Second,
	}
	must(t, a.put(l.hBox))
	if got := strings.Join(l.boxRoutes(t), "|"); got != leaseRoutes {
		t.Fatalf("routes %s, want %s", got, leaseRoutes)
	}
	deadline := time.After(10 * time.Second)
	for gone := false; !gone; {
		select {
		case u := <-updates:
			gone = !u.NewAddr && u.LinkAddress.String() == "10.45.0.60/24"
		case <-deadline:
			t.Fatalf("address still there 10 s after its 2 s lifetime: %v", l.boxAddrs(t))
		}
	}
	if rs := l.boxRoutes(t); len(rs) != 0 {
		t.Errorf("routes left after the address expired: %v", rs)
	}
}

// TestHostDHCPDomainSearch: dnsmasq hands out option 119 (which it
// encodes with compression pointers) beside option 15. The lease keeps
// the list; the shared resolv.conf, where a static uplink of a lower
// metric already stands, gets the lease's servers and domains after the
// static ones, under the lease's own comment, as the Wi-Fi link's do.
func TestHostDHCPDomainSearch(t *testing.T) {
	l := newISPWire(t)
	l.startDnsmasq(t, "--dhcp-option=option:domain-search,lab.example,corp.example,dev.lab.example",
		"--dhcp-option=option:domain-name,isp.example")
	cfg := iptvConfig(l.dir)
	shared := NewResolvConf(cfg.ResolvConf)
	must(t, shared.Set(DNSSource{Link: "eth9", Method: MethodStatic, Metric: 0, Servers: addrs("192.0.2.53"), Search: []string{"office.example", "corp.example"}}))
	cfg.DNS, cfg.RouteMetric, cfg.Source = shared, 600, "wifi dhcp" // the Wi-Fi link's (wifi.DefaultRouteMetric)
	c, events := l.startClient(t, cfg)

	e := waitState(t, events, StateBound, 10*time.Second)
	if got := strings.Join(e.Lease.Search, " "); got != "lab.example corp.example dev.lab.example" || e.Lease.Domain != "isp.example" {
		t.Errorf("lease search %q domain %q", got, e.Lease.Domain)
	}
	if got := strings.Join(l.boxRoutes(t), "|"); got != "0.0.0.0/0 via 10.45.0.1 metric 600|10.45.0.0/24 metric 600" {
		t.Errorf("routes %s", got)
	}
	b, err := os.ReadFile(cfg.ResolvConf)
	must(t, err)
	want := `# written by boxagent: DNS servers of the uplinks, lowest route metric first
# eth9 (static, metric 0): 192.0.2.53 search office.example corp.example
# uplink0 (wifi dhcp, metric 600): 10.45.0.1 search lab.example corp.example dev.lab.example
search office.example corp.example lab.example dev.lab.example
nameserver 192.0.2.53
nameserver 10.45.0.1
`
	if string(b) != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", b, want)
	}
	// The lease as net show has it, JSON included.
	if j, err := json.Marshal(c.Status()); err != nil || !strings.Contains(string(j), `"search":["lab.example","corp.example","dev.lab.example"]`) {
		t.Errorf("status JSON %s %v", j, err)
	}
}
