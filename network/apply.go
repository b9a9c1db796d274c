package network

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// applied is what one uplink puts into the kernel for an address: the
// address (without the kernel's own prefix route, so that the prefix
// route can carry the uplink's metric), the prefix route, the default
// route (when router is set) and the uplink's other routes.
type applied struct {
	link   netlink.Link
	addr   netip.Prefix
	router netip.Addr
	extra  []Route
	metric uint32
	proto  netlink.RouteProtocol
	// lifetime of the address; 0 for forever.
	lifetime time.Duration
}

func (a applied) nlAddr() *netlink.Addr {
	na := &netlink.Addr{IPNet: prefixNet(a.addr), Flags: unix.IFA_F_NOPREFIXROUTE}
	if a.lifetime > 0 {
		// Whole seconds, rounded up; 0 would mean forever.
		secs := int(min((a.lifetime+time.Second-1)/time.Second, math.MaxInt32-1))
		na.ValidLft, na.PreferedLft = max(secs, 1), max(secs, 1)
	}
	return na
}

func (a applied) routes() []*netlink.Route {
	idx := a.link.Attrs().Index
	src := net.IP(a.addr.Addr().AsSlice())
	rs := []*netlink.Route{{
		LinkIndex: idx,
		Dst:       prefixNet(a.addr.Masked()),
		Src:       src,
		Scope:     netlink.SCOPE_LINK,
		Priority:  int(a.metric),
		Protocol:  a.proto,
		Family:    netlink.FAMILY_V4,
	}}
	if a.router.IsValid() {
		rs = append(rs, &netlink.Route{
			LinkIndex: idx,
			Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			Gw:        net.IP(a.router.AsSlice()),
			Src:       src,
			Priority:  int(a.metric),
			Protocol:  a.proto,
			Family:    netlink.FAMILY_V4,
		})
	}
	for _, r := range a.extra {
		rs = append(rs, r.netlinkRoute(idx, src, a.metric, a.proto))
	}
	return rs
}

// put adds or refreshes the address and its routes.
func (a applied) put(nl Netlink) error {
	if err := nl.AddrReplace(a.link, a.nlAddr()); err != nil {
		return fmt.Errorf("cannot set address %s on %s: %w", a.addr, a.link.Attrs().Name, err)
	}
	for _, r := range a.routes() {
		if err := nl.RouteReplace(r); err != nil {
			return fmt.Errorf("cannot set route %s on %s: %w", routeText(r), a.link.Attrs().Name, err)
		}
	}
	return nil
}

// remove takes the routes and the address away; what is already gone
// is no error.
func (a applied) remove(nl Netlink) error {
	var errs []error
	for _, r := range a.routes() {
		if err := nl.RouteDel(r); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("cannot remove route %s from %s: %w", routeText(r), a.link.Attrs().Name, err))
		}
	}
	if err := nl.AddrDel(a.link, a.nlAddr()); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("cannot remove address %s from %s: %w", a.addr, a.link.Attrs().Name, err))
	}
	return errors.Join(errs...)
}

func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}

func routeText(r *netlink.Route) string {
	s := r.Dst.String()
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	return fmt.Sprintf("%s metric %d", s, r.Priority)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// leaseApplied is what a lease puts into the kernel now: its address, the
// default route unless the uplink carries none, the routes the server
// pushed and the uplink's static ones.
func (c *DHCPClient) leaseApplied(l *Lease) applied {
	a := applied{
		link: c.link, addr: l.Address, router: l.Router, metric: c.cfg.RouteMetric,
		extra: append(slices.Clone(l.Routes), c.cfg.Routes...),
		proto: unix.RTPROT_DHCP, lifetime: l.ExpiresAt().Sub(c.clock.Now()),
	}
	if c.cfg.NoDefaultRoute {
		a.router = netip.Addr{}
	}
	return a
}

// apply puts a new or renewed lease into the kernel and resolv.conf,
// removing what an earlier lease with another address or router put
// there.
func (c *DHCPClient) apply(old, l *Lease) error {
	var errs []error
	if old != nil && (old.Address != l.Address || old.Router != l.Router || !slices.Equal(old.Routes, l.Routes)) {
		if err := c.leaseApplied(old).remove(c.nl); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.leaseApplied(l).put(c.nl); err != nil {
		errs = append(errs, err)
	}
	method := cmp.Or(c.cfg.Source, MethodDHCP)
	if err := c.dns.Set(DNSSource{Link: c.cfg.Link, Method: method, Metric: c.cfg.RouteMetric, Servers: l.DNS, Search: l.SearchDomains()}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unapply removes what a lease put into the kernel and resolv.conf.
func (c *DHCPClient) unapply(l *Lease) error {
	return errors.Join(c.leaseApplied(l).remove(c.nl), c.dns.Drop(c.cfg.Link))
}

// ApplyStatic puts a static uplink's address, prefix route and default
// route (with the uplink's metric) on its link, for good, and writes its
// DNS servers to resolvConf unless that is "". u must be valid.
func ApplyStatic(nl Netlink, u Uplink, resolvConf string) error {
	return applyStatic(nl, u, resolvFor(nil, resolvConf))
}

// applyStatic is ApplyStatic with the servers going to dns.
func applyStatic(nl Netlink, u Uplink, dns *ResolvConf) error {
	v := u.IPv4
	link, err := nl.LinkByName(u.LinkName())
	if err != nil {
		return fmt.Errorf("cannot find link %q: %w", u.LinkName(), err)
	}
	a, err := staticApplied(link, u)
	if err != nil {
		return err
	}
	if err := a.put(nl); err != nil {
		return err
	}
	var servers []netip.Addr
	for _, s := range v.DNS {
		d, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("cannot use dns: %w", err)
		}
		servers = append(servers, d)
	}
	return dns.Set(DNSSource{Link: u.LinkName(), Method: MethodStatic, Metric: uint32(v.RouteMetric), Servers: servers, Search: v.Search})
}
