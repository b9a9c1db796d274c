package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// IPv6 of an uplink: the kernel makes the SLAAC addresses and the
// default route from router advertisements once the agent has set the
// link's settings (setIPv6Sysctls); the agent reads the same RAs itself
// for what the kernel does not keep (RDNSS, DNSSL, the M and O flags),
// runs DHCPv6 when they or the config ask (dhcpv6.go), and follows the
// link's IPv6 addresses and default route by netlink to report them.

// ipv6Runner is what keeps one uplink's IPv6 going.
type ipv6Runner struct {
	name    string
	ifindex int
	hw      net.HardwareAddr
	cfg     IPv6
	metric  uint32 // the uplink's IPv4 route metric: where its DNS servers rank
	ns      netns.NsHandle
	nl      linker
	dns     *ResolvConf
	log     *slog.Logger
	emit    func(kind, detail string)

	cancel    context.CancelFunc
	done      chan struct{}
	releasing atomic.Bool // stopping for good: the DHCPv6 lease is released

	mu       sync.Mutex
	ra       *RA                      // the last RA
	raAt     time.Time                // when it came
	rdnss    map[netip.Addr]time.Time // RA DNS servers until their lifetimes end
	dnssl    map[string]time.Time
	lease    *DHCPv6Lease // nil without one
	dhcpErr  error
	dhcpMode string     // what DHCPv6 does now: "", "stateful", "stateless"
	ll       netip.Addr // the link-local address once DAD passed
	llReady  chan struct{}
	raCh     chan RA       // to the DHCPv6 client: every RA
	kick     chan struct{} // to the DHCPv6 client: the carrier came back
	raConn   *raConn
}

// IPv6 sysctl values.
const (
	acceptRAEvenForwarding = "2" // accept_ra = 2: RAs even with forwarding on (prefix delegation routes downstream)
)

// ipv6SysctlDir is the link's folder under /proc/sys, read in the
// uplinks' namespace.
func ipv6SysctlDir(link string) string { return filepath.Join("/proc/sys/net/ipv6/conf", link) }

// setIPv6Sysctls puts the link's IPv6 settings in place for cfg, in ns.
// These keys have no netlink setter (the kernel's IPv6 AF_SPEC takes only
// the token and addr_gen_mode), so the agent's unit must be able to
// write /proc/sys/net/ipv6/conf (ReadWritePaths).
func setIPv6Sysctls(ns netns.NsHandle, link string, cfg IPv6) error {
	type kv struct{ k, v string }
	var set []kv
	if cfg.Method == IPv6Off {
		set = []kv{{"disable_ipv6", "1"}}
	} else {
		autoconf := "1"
		if cfg.Method == IPv6DHCP {
			autoconf = "0"
		}
		set = []kv{{"accept_ra", acceptRAEvenForwarding}, {"autoconf", autoconf}}
		switch cfg.AddrGenMode {
		case "eui64":
			set = append(set, kv{"addr_gen_mode", "0"})
		case "random":
			set = append(set, kv{"addr_gen_mode", "3"})
		}
		defrtr := "1"
		if cfg.DefaultRoute != nil && !*cfg.DefaultRoute {
			defrtr = "0"
		}
		set = append(set, kv{"accept_ra_defrtr", defrtr})
		if cfg.RouteMetric != 0 {
			set = append(set, kv{"ra_defrtr_metric", strconv.Itoa(cfg.RouteMetric)})
		}
		// Last: with IPv6 coming on, the link-local address and the
		// kernel's router solicitation follow the settings above.
		set = append(set, kv{"disable_ipv6", "0"})
	}
	return InNamespace(ns, func() error {
		for _, s := range set {
			p := filepath.Join(ipv6SysctlDir(link), s.k)
			if err := os.WriteFile(p, []byte(s.v), 0); err != nil {
				return fmt.Errorf("cannot set %s to %s: %w", p, s.v, err)
			}
		}
		return nil
	})
}

// startIPv6 sets the link's IPv6 settings and, unless IPv6 is off,
// starts following its RAs, addresses and default route, and DHCPv6.
// link is the uplink's own link, or its PPPoE session's (whose DUID is
// made from hw, the uplink's MAC: a PPP link has none).
func (m *Manager) startIPv6(u Uplink, link netlink.Link, hw net.HardwareAddr) (*ipv6Runner, error) {
	name := u.LinkName()
	if err := setIPv6Sysctls(m.ns, link.Attrs().Name, u.IPv6); err != nil {
		return nil, err
	}
	if u.IPv6.Method == IPv6Off {
		return nil, nil
	}
	r := &ipv6Runner{
		name: name, ifindex: link.Attrs().Index, hw: hw, cfg: u.IPv6,
		metric: uint32(u.IPv4.RouteMetric), ns: m.ns, nl: m.nl, dns: m.dns, log: m.log.With("link", name, "family", "ipv6"),
		rdnss: map[netip.Addr]time.Time{}, dnssl: map[string]time.Time{},
		llReady: make(chan struct{}), raCh: make(chan RA, 1), kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	r.emit = func(kind, detail string) {
		m.emit(UplinkEvent{Uplink: name, Kind: kind, Detail: detail, Time: time.Now()})
	}
	ra, err := openRAConn(m.ns, r.ifindex)
	if err != nil {
		return nil, err
	}
	r.raConn = ra
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var wg sync.WaitGroup
	run := func(what string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("ipv6 "+what+" stopped", "err", err)
				r.emit("ipv6", what+" stopped: "+err.Error())
			}
		})
	}
	run("address watch", r.watchAddrs)
	run("route watch", r.watchRoutes)
	run("router advertisements", func(ctx context.Context) error { return r.readRAs(ctx, ra) })
	run("dhcpv6", r.runDHCPv6)
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r, nil
}

// stop ends the runner; unapply also removes what it put in place (the
// DHCPv6 addresses, its DNS servers).
func (r *ipv6Runner) stop(unapply bool) {
	if r == nil {
		return
	}
	r.releasing.Store(unapply)
	r.cancel()
	<-r.done
	if !unapply {
		return
	}
	r.mu.Lock()
	lease := r.lease
	r.lease = nil
	r.mu.Unlock()
	if lease != nil {
		r.removeLease(lease)
	}
	if err := r.dns.DropIPv6(r.name); err != nil {
		r.log.Warn("cannot write the DNS servers", "err", err)
	}
}

// readRAs reads the link's RAs until ctx ends: it solicits one first,
// keeps the DNS options with their lifetimes and hands every RA to the
// DHCPv6 client.
func (r *ipv6Runner) readRAs(ctx context.Context, c *raConn) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	if err := c.solicit(); err != nil {
		// The kernel solicits too; the router's periodic RA comes anyway.
		r.log.Info("router solicitation", "err", err)
	}
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-expiry.C:
				r.syncDNS(expiry)
			}
		}
	}()
	for {
		ra, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cannot read router advertisements: %w", err)
		}
		now := time.Now()
		r.mu.Lock()
		first := r.ra == nil
		changed := first || r.ra.Managed != ra.Managed || r.ra.Other != ra.Other || r.ra.Router != ra.Router
		r.ra, r.raAt = &ra, now
		if ra.DNS != nil {
			for _, a := range ra.DNS {
				r.rdnss[a] = now.Add(ra.DNSLifetime)
			}
		}
		for _, d := range ra.Search {
			r.dnssl[d] = now.Add(ra.SearchLifetime)
		}
		r.mu.Unlock()
		if changed {
			r.log.Info("router advertisement", "router", ra.Router, "managed", ra.Managed, "other", ra.Other, "dns", ra.DNS)
			r.emit("ra", fmt.Sprintf("router %s managed=%t other=%t prefixes=%v dns=%v", ra.Router, ra.Managed, ra.Other, ra.Prefixes, ra.DNS))
		}
		r.syncDNS(expiry)
		select {
		case r.raCh <- ra:
		default: // the client has not taken the last one: it needs only the flags, which it will see next
			select {
			case <-r.raCh:
			default:
			}
			r.raCh <- ra
		}
	}
}

// syncDNS drops the RA servers and domains whose lifetimes ended, gives
// the resolver what remains (with the DHCPv6 lease's) and arms expiry
// for the next end.
func (r *ipv6Runner) syncDNS(expiry *time.Timer) {
	now := time.Now()
	r.mu.Lock()
	var next time.Time
	src := DNSSource{Link: r.name, Method: "ipv6", Metric: r.metric, IPv6: true}
	for a, end := range r.rdnss {
		if !end.After(now) {
			delete(r.rdnss, a)
			continue
		}
		src.Servers = append(src.Servers, a)
		if next.IsZero() || end.Before(next) {
			next = end
		}
	}
	for d, end := range r.dnssl {
		if !end.After(now) {
			delete(r.dnssl, d)
			continue
		}
		src.Search = append(src.Search, d)
		if next.IsZero() || end.Before(next) {
			next = end
		}
	}
	if r.lease != nil {
		src.Servers = append(src.Servers, r.lease.DNS...)
		src.Search = append(src.Search, r.lease.Search...)
	}
	r.mu.Unlock()
	slices.SortFunc(src.Servers, netip.Addr.Compare)
	src.Servers = slices.Compact(src.Servers)
	slices.Sort(src.Search)
	src.Search = slices.Compact(src.Search)
	if expiry != nil && !next.IsZero() {
		expiry.Reset(time.Until(next))
	}
	if err := r.dns.Set(src); err != nil {
		r.log.Warn("cannot write the DNS servers", "err", err)
	}
}

// follow subscribes to netlink updates in ns with subscribe (which must
// close updates when done closes), hands fn what list says exists
// (nlist.go), then each update until ctx ends or the subscription fails.
func follow[T any](ctx context.Context, ns netns.NsHandle, what string,
	subscribe func(updates chan T, done chan struct{}, onErr func(error)) error, list func(netns.NsHandle) ([]T, error), fn func(T)) error {
	updates := make(chan T, 64)
	done := make(chan struct{})
	failed := make(chan error, 1)
	onErr := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	if err := InNamespace(ns, func() error { return subscribe(updates, done, onErr) }); err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", what, err)
	}
	defer func() {
		close(done)
		for range updates {
		}
	}()
	now, err := list(ns)
	if err != nil {
		return fmt.Errorf("%s: cannot list: %w", what, err)
	}
	for _, u := range now {
		fn(u)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return fmt.Errorf("%s: %w", what, err)
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("%s: subscription ended", what)
			}
			fn(u)
		}
	}
}

// watchAddrs follows the link's IPv6 addresses: it reports global ones
// coming and going, and marks the link-local address ready (DAD passed)
// for the DHCPv6 client.
func (r *ipv6Runner) watchAddrs(ctx context.Context) error {
	sub := func(ch chan netlink.AddrUpdate, done chan struct{}, onErr func(error)) error {
		return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr})
	}
	return follow(ctx, r.ns, "address changes", sub, existingAddrs, r.addrUpdate)
}

func (r *ipv6Runner) addrUpdate(u netlink.AddrUpdate) {
	a, _ := netip.AddrFromSlice(u.LinkAddress.IP)
	if u.LinkIndex != r.ifindex || !a.Is6() || a.Is4In6() {
		return
	}
	tentative := u.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0
	if a.IsLinkLocalUnicast() {
		if u.NewAddr && !tentative {
			r.mu.Lock()
			if !r.ll.IsValid() {
				r.ll = a
				close(r.llReady)
			}
			r.mu.Unlock()
		}
		return
	}
	if tentative && u.NewAddr {
		return
	}
	ones, _ := u.LinkAddress.Mask.Size()
	p := netip.PrefixFrom(a, ones)
	if u.NewAddr {
		r.emit("ipv6", fmt.Sprintf("address %s (%s) valid %s", p, r.origin(p, u.Flags), lifetimeText(u.ValidLft)))
	} else {
		r.emit("ipv6", fmt.Sprintf("address %s removed", p))
	}
}

// watchRoutes reports the link's IPv6 default route coming and going
// (the kernel's, from RAs).
func (r *ipv6Runner) watchRoutes(ctx context.Context) error {
	sub := func(ch chan netlink.RouteUpdate, done chan struct{}, onErr func(error)) error {
		return netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{ErrorCallback: onErr})
	}
	return follow(ctx, r.ns, "route changes", sub, existingRoutes, func(u netlink.RouteUpdate) {
		if u.LinkIndex != r.ifindex || u.Family != unix.AF_INET6 || u.Dst != nil && !isZeroMask(u.Dst.Mask) {
			return
		}
		switch u.Type {
		case unix.RTM_NEWROUTE:
			r.emit("ipv6", fmt.Sprintf("default route via %s metric %d", u.Gw, u.Priority))
		case unix.RTM_DELROUTE:
			r.emit("ipv6", fmt.Sprintf("default route via %s removed", u.Gw))
		}
	})
}

// Origins of an IPv6 address (IPv6Addr.Origin).
const (
	OriginSLAAC     = "slaac"
	OriginTemporary = "slaac-temporary"
	OriginDHCPv6    = "dhcpv6"
	OriginStatic    = "static"
	OriginLinkLocal = "link-local"
)

// origin says where an address of the link came from: the DHCPv6 lease's
// are the agent's; the kernel's SLAAC ones have lifetimes (not
// IFA_F_PERMANENT); a permanent one was put there by hand or config. A
// dynamic /128 that no lease of this run names is a DHCPv6 address too,
// of a run before a restart (SLAAC makes /64s).
func (r *ipv6Runner) origin(p netip.Prefix, flags int) string {
	a := p.Addr()
	if r != nil {
		r.mu.Lock()
		lease := r.lease
		r.mu.Unlock()
		if lease != nil && slices.ContainsFunc(lease.Addresses, func(l DHCPv6Addr) bool { return l.Address == a }) {
			return OriginDHCPv6
		}
	}
	switch {
	case a.IsLinkLocalUnicast():
		return OriginLinkLocal
	case flags&unix.IFA_F_TEMPORARY != 0:
		return OriginTemporary
	case flags&unix.IFA_F_PERMANENT != 0:
		return OriginStatic
	case p.Bits() == 128:
		return OriginDHCPv6
	}
	return OriginSLAAC
}

// lifetimeText spells an address lifetime of netlink: seconds, or
// "forever" for the kernel's infinity.
func lifetimeText(s int) string {
	if uint32(s) == 0xffffffff {
		return "forever"
	}
	return strconv.Itoa(s) + "s"
}
