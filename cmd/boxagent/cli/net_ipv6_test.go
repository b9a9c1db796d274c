package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/network"
)

// TestPrintIPv6: an uplink's IPv6 under the table: router flags, the
// DHCPv6 client and delegated prefix, each address with origin and
// lifetimes.
func TestPrintIPv6(t *testing.T) {
	n := func(v int) *int { return &v }
	u := network.UplinkStatus{Name: "eth0.45", Parent: "eth0", Method: "dhcp", IPv6: &network.IPv6Status{
		Method: "auto",
		Router: &network.RouterView{Address: "fe80::1", Managed: true, Lifetime: 1800, Prefixes: []string{"2001:db8:45::/64"}, Seen: time.Unix(0, 0)},
		DHCPv6: &network.DHCPv6View{Mode: "stateful", Server: "0001", Prefix: "2001:db8:4500::/56", PrefixValidFor: n(590),
			RenewAt: time.Unix(60, 0), RebindAt: time.Unix(96, 0)},
		Addresses: []network.IPv6Addr{
			{Address: "2001:db8:45::1a5/128", Origin: "dhcpv6", PreferredFor: n(110), ValidFor: n(115)},
			{Address: "fe80::b0:aff:fe00:4501/64", Origin: "link-local"},
		},
		DNS: []string{"2001:db8:45::53"}, Search: []string{"iptv.example"},
	}}
	var b strings.Builder
	printUplinkDetail(&b, u)
	out := b.String()
	t.Log(out)
	for _, want := range []string{
		"eth0.45: ipv6 auto\n",
		"  router:   fe80::1 flags M, lifetime 1800s, prefixes 2001:db8:45::/64",
		"  dhcpv6:   stateful from 0001\n",
		"  delegated prefix: 2001:db8:4500::/56 valid 590s\n",
		"  2001:db8:45::1a5/128                         dhcpv6          preferred 110s     valid 115s\n",
		"  fe80::b0:aff:fe00:4501/64                    link-local      preferred forever  valid forever\n",
		"  dns:      2001:db8:45::53 search iptv.example\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
