package network

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// TestClasslessRoutes reads options 121 and 249 off the wire (RFC 3442's
// encoding: width, the significant octets, the router) into the lease.
func TestClasslessRoutes(t *testing.T) {
	raw := func(code uint8, b ...byte) dhcpv4.Option {
		return dhcpv4.Option{Code: dhcpv4.GenericOptionCode(code), Value: dhcpv4.OptionGeneric{Data: b}}
	}
	router := dhcpv4.OptRouter(mustAddr("10.45.0.254").AsSlice())
	for _, c := range []struct {
		name   string
		opts   []dhcpv4.Option
		routes string
		router string
	}{
		{"none: option 3", []dhcpv4.Option{router}, "", "10.45.0.254"},
		{"121 without a default: 3 ignored", []dhcpv4.Option{router, raw(121, 16, 10, 200, 10, 45, 0, 1)}, "10.200.0.0/16 via 10.45.0.1", "invalid IP"},
		{"121 with a default and an on-link route", []dhcpv4.Option{router, raw(121, 0, 10, 45, 0, 1, 8, 239, 0, 0, 0, 0)}, "239.0.0.0/8 on-link", "10.45.0.1"},
		{"249 alone", []dhcpv4.Option{raw(249, 24, 192, 0, 2, 10, 45, 0, 1)}, "192.0.2.0/24 via 10.45.0.1", "invalid IP"},
		{"121 wins over 249", []dhcpv4.Option{raw(121, 24, 198, 51, 100, 10, 45, 0, 1), raw(249, 24, 192, 0, 2, 10, 45, 0, 1)}, "198.51.100.0/24 via 10.45.0.1", "invalid IP"},
		{"a duplicate once", []dhcpv4.Option{raw(121, 8, 10, 10, 45, 0, 1, 8, 10, 10, 45, 0, 1)}, "10.0.0.0/8 via 10.45.0.1", "invalid IP"},
		{"malformed 121: as if absent", []dhcpv4.Option{router, raw(121, 33, 1, 2)}, "", "10.45.0.254"},
		{"cut short: as if absent", []dhcpv4.Option{router, raw(121, 16, 10, 200, 10, 45)}, "", "10.45.0.254"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := dhcpv4.FromBytes(ackWith(t, c.opts...).ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			l, err := leaseFrom(m, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if got := routeStrings(l.Routes); got != c.routes {
				t.Errorf("routes %q, want %q", got, c.routes)
			}
			if got := l.Router.String(); got != c.router {
				t.Errorf("router %s, want %s", got, c.router)
			}
		})
	}
}

// TestLeaseAppliedRoutes: what a lease puts in the kernel, with and without
// the default route.
func TestLeaseAppliedRoutes(t *testing.T) {
	l := &Lease{Address: mustPrefix("10.45.0.50/24"), Router: mustAddr("10.45.0.1"),
		Routes: []Route{{To: mustPrefix("10.200.0.0/16"), Via: mustAddr("10.45.0.1")}}, Duration: time.Hour}
	for _, c := range []struct {
		noDefault bool
		want      string
	}{
		{false, "10.45.0.0/24 metric 7|0.0.0.0/0 via 10.45.0.1 metric 7|10.200.0.0/16 via 10.45.0.1 metric 7|192.0.2.0/24 metric 7"},
		{true, "10.45.0.0/24 metric 7|10.200.0.0/16 via 10.45.0.1 metric 7|192.0.2.0/24 metric 7"},
	} {
		c2 := &DHCPClient{cfg: DHCPConfig{RouteMetric: 7, NoDefaultRoute: c.noDefault, Routes: []Route{{To: mustPrefix("192.0.2.0/24")}}},
			link: &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0.45", Index: 3}}, clock: newFakeClock()}
		var got []string
		for _, r := range c2.leaseApplied(l).routes() {
			got = append(got, routeText(r))
		}
		if s := strings.Join(got, "|"); s != c.want {
			t.Errorf("no default %v: routes %s, want %s", c.noDefault, s, c.want)
		}
	}
}
