package network

import (
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPv6Status is an uplink's IPv6 as `net show` shows it.
type IPv6Status struct {
	Method string `json:"method"`
	// Router is the last router advertisement heard; nil before one.
	Router *RouterView `json:"router,omitempty"`
	// DHCPv6 is the client's state; nil when it does not run.
	DHCPv6 *DHCPv6View `json:"dhcpv6,omitempty"`
	// Addresses are the link's IPv6 addresses, as the kernel has them
	// now, with where each came from.
	Addresses []IPv6Addr `json:"addresses"`
	// DNS and Search are what the uplink's IPv6 gives the resolver (RA
	// and DHCPv6 together).
	DNS    []string `json:"dns,omitempty"`
	Search []string `json:"search,omitempty"`
}

// RouterView is a router advertisement as `net show` shows it.
type RouterView struct {
	Address  string    `json:"address"`
	Managed  bool      `json:"managed"`
	Other    bool      `json:"other"`
	Lifetime int       `json:"lifetime_s"` // 0: not a default router
	Prefixes []string  `json:"prefixes,omitempty"`
	Seen     time.Time `json:"seen"`
}

// DHCPv6View is the DHCPv6 client's state.
type DHCPv6View struct {
	// Mode is "stateful" or "stateless"; "waiting" until the link-local
	// address passed DAD and (mode auto) an RA said M or O.
	Mode   string `json:"mode"`
	Error  string `json:"error,omitempty"`
	Server string `json:"server,omitempty"` // its DUID, hex
	// Prefix is the delegated prefix, with the seconds left of it.
	Prefix         string    `json:"delegated_prefix,omitempty"`
	PrefixValidFor *int      `json:"delegated_valid_for,omitempty"`
	Acquired       time.Time `json:"acquired,omitzero"`
	RenewAt        time.Time `json:"renew_at,omitzero"`
	RebindAt       time.Time `json:"rebind_at,omitzero"`
}

// IPv6Addr is one IPv6 address of an uplink.
type IPv6Addr struct {
	Address string `json:"address"`
	Origin  string `json:"origin"` // slaac, slaac-temporary, dhcpv6, static, link-local
	// PreferredFor and ValidFor are the seconds left; absent: forever.
	PreferredFor *int `json:"preferred_for,omitempty"`
	ValidFor     *int `json:"valid_for,omitempty"`
	Tentative    bool `json:"tentative,omitempty"`
}

// ipv6Status is an uplink's IPv6 now; r is nil when IPv6 is off.
func ipv6Status(nl linker, method string, r *ipv6Runner) *IPv6Status {
	s := &IPv6Status{Method: method, Addresses: []IPv6Addr{}}
	if r == nil {
		return s
	}
	now := time.Now()
	r.mu.Lock()
	if ra := r.ra; ra != nil {
		rv := &RouterView{Address: ra.Router.String(), Managed: ra.Managed, Other: ra.Other, Lifetime: int(ra.RouterLifetime / time.Second), Seen: r.raAt}
		for _, p := range ra.Prefixes {
			rv.Prefixes = append(rv.Prefixes, p.String())
		}
		s.Router = rv
	}
	var dns []netip.Addr
	for a := range r.rdnss {
		dns = append(dns, a)
	}
	for d := range r.dnssl {
		s.Search = append(s.Search, d)
	}
	if r.cfg.dhcpv6Mode() != DHCPv6Off {
		d := &DHCPv6View{Mode: r.dhcpMode}
		if d.Mode == "" {
			d.Mode = "waiting"
		}
		if r.dhcpErr != nil {
			d.Error = r.dhcpErr.Error()
		}
		if l := r.lease; l != nil {
			d.Server, d.Acquired = l.Server, l.Acquired
			if len(l.Addresses) > 0 || l.Prefix.IsValid() {
				d.RenewAt, d.RebindAt = l.renewAt(), l.rebindAt()
			}
			if l.Prefix.IsValid() {
				d.Prefix = l.Prefix.String()
				left := int(l.Acquired.Add(l.PrefixValid).Sub(now) / time.Second)
				d.PrefixValidFor = &left
			}
			dns = append(dns, l.DNS...)
			s.Search = append(s.Search, l.Search...)
		}
		s.DHCPv6 = d
	}
	r.mu.Unlock()
	slices.SortFunc(dns, netip.Addr.Compare)
	for _, a := range slices.Compact(dns) {
		s.DNS = append(s.DNS, a.String())
	}
	slices.Sort(s.Search)
	s.Search = slices.Compact(s.Search)

	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: r.ifindex}}
	as, err := nl.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return s
	}
	for _, a := range as {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		ai := IPv6Addr{Address: a.IPNet.String(), Origin: r.origin(netip.PrefixFrom(ip, ones), a.Flags), Tentative: a.Flags&unix.IFA_F_TENTATIVE != 0}
		if uint32(a.PreferedLft) != 0xffffffff {
			n := a.PreferedLft
			ai.PreferredFor = &n
		}
		if uint32(a.ValidLft) != 0xffffffff {
			n := a.ValidLft
			ai.ValidFor = &n
		}
		s.Addresses = append(s.Addresses, ai)
	}
	return s
}
