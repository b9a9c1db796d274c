package network

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
)

// Route is a route an uplink carries besides its own prefix and the
// default route: a static one from the config (`routes`), or one the
// DHCP server pushed with option 121 (RFC 3442) or 249 (the same format,
// Microsoft's code, which some IPTV platforms still send).
type Route struct {
	To netip.Prefix `json:"to"`
	// Via is the next hop; the zero address: the destination is on the
	// link (RFC 3442's router 0.0.0.0, a PPPoE link).
	Via netip.Addr `json:"via,omitzero"`
}

func (r Route) String() string {
	if r.Via.IsValid() && !r.Via.IsUnspecified() {
		return r.To.String() + " via " + r.Via.String()
	}
	return r.To.String() + " on-link"
}

// RouteConfig is one entry of [network.uplink.ipv4] routes.
type RouteConfig struct {
	To  string `toml:"to" json:"to"`
	Via string `toml:"via,omitempty" json:"via,omitempty"`
}

// routeError is a bad entry of routes: the key (to, via) and what is wrong.
type routeError struct{ Field, Msg string }

func (e *routeError) Error() string { return e.Field + ": " + e.Msg }

// parse checks the entry: an IPv4 prefix in its masked form and, when
// given, an IPv4 next hop.
func (c RouteConfig) parse() (Route, error) {
	var r Route
	p, err := netip.ParsePrefix(c.To)
	switch {
	case err != nil || !p.Addr().Is4():
		return r, &routeError{"to", fmt.Sprintf("%q is not an IPv4 prefix (a.b.c.d/len)", c.To)}
	case p != p.Masked():
		return r, &routeError{"to", fmt.Sprintf("%q has host bits set: write %s", c.To, p.Masked())}
	case p.Bits() == 0:
		return r, &routeError{"to", fmt.Sprintf("%q is the default route: the uplink's gateway and default_route say that", c.To)}
	}
	r.To = p
	if c.Via != "" {
		a, err := netip.ParseAddr(c.Via)
		if err != nil || !a.Is4() {
			return r, &routeError{"via", fmt.Sprintf("%q is not an IPv4 address", c.Via)}
		}
		r.Via = a
	}
	return r, nil
}

// parseRoutes is the uplink's static routes; the config must be valid.
func parseRoutes(cs []RouteConfig) ([]Route, error) {
	var out []Route
	for _, c := range cs {
		r, err := c.parse()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Classless static route options: 121 (RFC 3442) and 249, its older
// Microsoft twin, used only when 121 is absent.
const (
	optionClasslessRoutes   = 121
	optionMSClasslessRoutes = 249
)

// classlessRoutes reads option 121, else 249. The default route among
// them (0.0.0.0/0) is returned as router; ok says the server sent either
// option, in which case RFC 3442 says the router option (3) is ignored.
func classlessRoutes(ack *dhcpv4.DHCPv4) (routes []Route, router netip.Addr, ok bool) {
	raw := ack.Options.Get(dhcpv4.GenericOptionCode(optionClasslessRoutes))
	if raw == nil {
		raw = ack.Options.Get(dhcpv4.GenericOptionCode(optionMSClasslessRoutes))
	}
	if raw == nil {
		return nil, netip.Addr{}, false
	}
	var rs dhcpv4.Routes
	if err := rs.FromBytes(raw); err != nil {
		// A malformed option is as if none was sent (RFC 3442 §4).
		return nil, netip.Addr{}, false
	}
	for _, r := range rs {
		ones, _ := r.Dest.Mask.Size()
		dst, ok1 := netip.AddrFromSlice(r.Dest.IP.To4())
		via, ok2 := netip.AddrFromSlice(r.Router.To4())
		if !ok1 || !ok2 {
			continue
		}
		if ones == 0 {
			if !router.IsValid() {
				router = via
			}
			continue
		}
		route := Route{To: netip.PrefixFrom(dst, ones).Masked(), Via: via}
		if !slices.Contains(routes, route) {
			routes = append(routes, route)
		}
	}
	return routes, router, true
}

// netlinkRoute is r on the link with the uplink's metric, source and
// protocol.
func (r Route) netlinkRoute(idx int, src net.IP, metric uint32, proto netlink.RouteProtocol) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: idx,
		Dst:       prefixNet(r.To),
		Src:       src,
		Priority:  int(metric),
		Protocol:  proto,
		Family:    netlink.FAMILY_V4,
	}
	if r.Via.IsValid() && !r.Via.IsUnspecified() {
		nr.Gw = net.IP(r.Via.AsSlice())
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr
}
