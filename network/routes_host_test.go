package network

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestHostIPTVBesideInternet is the ISP's usual set-up at the routing
// table: an internet uplink holds the default route (here an on-link
// default route at the IPTV uplink's metric, as a PPPoE link's is) and the
// IPTV uplink, with default_route = false, gets its platform's routes from
// option 121 (which also names a default route: RFC 3442 lets servers do
// that) and must never touch the default route: not when bound, not at
// its renewals, not when its lease ends, which takes its own routes away.
func TestHostIPTVBesideInternet(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq(t, "--dhcp-option=121,10.200.0.0/16,10.45.0.1,239.0.0.0/8,0.0.0.0,0.0.0.0/0,10.45.0.1")
	// The internet uplink's link: a veth pair inside the box's namespace
	// (the kernel flushes a link's routes with its last address, so the
	// internet's default route must be on a link of its own, as ppp0 is).
	must(t, l.hBox.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "inet0"}, PeerName: "inet1"}))
	inet, err := l.hBox.LinkByName("inet0")
	must(t, err)
	must(t, l.hBox.LinkSetUp(inet))
	internet := &netlink.Route{
		LinkIndex: inet.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Scope:     netlink.SCOPE_LINK,
		Priority:  100,
		Protocol:  unix.RTPROT_BOOT,
	}
	must(t, l.hBox.RouteAdd(internet))
	iptvRoutes := func(when string, want ...string) {
		t.Helper()
		checkRouteSet(t, when+" (the IPTV link)", l.boxRoutes(t), want)
		rs, err := l.hBox.RouteList(inet, netlink.FAMILY_V4)
		must(t, err)
		if len(rs) != 1 || rs[0].Priority != 100 || rs[0].Gw != nil || rs[0].LinkIndex != inet.Attrs().Index {
			t.Errorf("%s: the internet's default route is not as it was: %v", when, rs)
		}
	}

	clock := newFakeClock()
	cfg := iptvConfig(l.dir) // metric 100, the internet route's
	cfg.Clock = clock
	cfg.NoDefaultRoute = true
	cfg.Routes = []Route{{To: mustPrefix("192.0.2.0/24"), Via: mustAddr("10.45.0.1")}}
	_, events := l.startClientFake(t, cfg)
	e := waitState(t, events, StateBound, 10*time.Second)
	d.record(t, 5*time.Second)
	if got, want := routeStrings(e.Lease.Routes), "10.200.0.0/16 via 10.45.0.1|239.0.0.0/8 on-link"; got != want {
		t.Errorf("lease routes %s, want %s", got, want)
	}
	if !e.Lease.Router.IsValid() {
		t.Errorf("option 121's default route is the lease's router: %v", e.Lease)
	}
	want := []string{"10.45.0.0/24 metric 100", "10.200.0.0/16 via 10.45.0.1 metric 100", "192.0.2.0/24 via 10.45.0.1 metric 100", "239.0.0.0/8 metric 100"}
	iptvRoutes("bound", want...)

	// T1: a renewal answered by dnsmasq, applied again.
	if e = clock.advanceTo(t, events); e.State != StateRenewing {
		t.Fatalf("%v, want renewing at T1", e)
	}
	waitState(t, events, StateBound, 5*time.Second)
	iptvRoutes("renewed", want...)

	// The lease ends: its routes go, the internet's stays.
	d.kill()
	for _, s := range []State{StateRenewing, StateRebinding, StateInit} {
		if e = clock.advanceTo(t, events); e.State != s {
			t.Fatalf("%v, want %s", e, s)
		}
	}
	if !errors.Is(e.Err, ErrLeaseExpired) {
		t.Fatalf("%v, want the lease expired", e)
	}
	iptvRoutes("expired")
}

func checkRouteSet(t *testing.T, when string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: routes\n  %s\nwant\n  %s", when, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func routeStrings(rs []Route) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, "|")
}

// TestHostIGMPVersion: igmp_version reaches the uplink's link (by
// netlink: the agent's unit cannot write /proc/sys), at every apply.
func TestHostIGMPVersion(t *testing.T) {
	l := newISPWire(t)
	m, _ := newTestManager(t, l)
	forced := func() string {
		t.Helper()
		var b []byte
		must(t, InNamespace(l.box, func() (err error) {
			b, err = os.ReadFile("/proc/sys/net/ipv4/conf/" + boxIf + "/force_igmp_version")
			return err
		}))
		return strings.TrimSpace(string(b))
	}
	if got := forced(); got != "0" {
		t.Fatalf("force_igmp_version %s before the uplink, want the kernel's 0", got)
	}
	u := Uplink{Parent: boxIf, IPv4: IPv4{Method: MethodStatic, Address: "10.45.0.2/24", IGMPVersion: 2}}
	for _, v := range []int{2, 3, 1} {
		u.IPv4.IGMPVersion = v
		if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
			t.Fatal(err)
		}
		if got := forced(); got != strconv.Itoa(v) {
			t.Errorf("igmp_version = %d: force_igmp_version %s", v, got)
		}
	}
}
