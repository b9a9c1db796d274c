package network

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DHCPv6Lease is what a DHCPv6 server gave an uplink.
type DHCPv6Lease struct {
	Server    string       `json:"server"` // its DUID, hex
	Addresses []DHCPv6Addr `json:"addresses,omitempty"`
	// Prefix is the delegated prefix (IA_PD), invalid without one.
	Prefix          netip.Prefix  `json:"prefix,omitzero"`
	PrefixPreferred time.Duration `json:"prefix_preferred,omitempty"`
	PrefixValid     time.Duration `json:"prefix_valid,omitempty"`
	DNS             []netip.Addr  `json:"dns,omitempty"`
	Search          []string      `json:"search,omitempty"`
	T1              time.Duration `json:"t1,omitempty"`
	T2              time.Duration `json:"t2,omitempty"`
	Acquired        time.Time     `json:"acquired"`
}

// DHCPv6Addr is one address of an IA_NA with its lifetimes.
type DHCPv6Addr struct {
	Address   netip.Addr    `json:"address"`
	Preferred time.Duration `json:"preferred"`
	Valid     time.Duration `json:"valid"`
}

// valid is how long the lease holds: its longest valid lifetime.
func (l *DHCPv6Lease) valid() time.Duration {
	v := l.PrefixValid
	for _, a := range l.Addresses {
		v = max(v, a.Valid)
	}
	return v
}

// renewAt and rebindAt are T1 and T2 after Acquired, or RFC 8415's 0.5
// and 0.8 of the shortest preferred lifetime when the server left them 0.
func (l *DHCPv6Lease) renewAt() time.Time { return l.Acquired.Add(l.t(l.T1, 5)) }

func (l *DHCPv6Lease) rebindAt() time.Time { return l.Acquired.Add(l.t(l.T2, 8)) }

func (l *DHCPv6Lease) t(set time.Duration, tenths time.Duration) time.Duration {
	if set > 0 {
		return set
	}
	pref := l.PrefixPreferred
	for _, a := range l.Addresses {
		if pref == 0 || a.Preferred < pref {
			pref = a.Preferred
		}
	}
	if pref == 0 {
		pref = time.Hour
	}
	return pref * tenths / 10
}

// Server ports and group (RFC 8415 7.1).
var allDHCPv6Servers = net.ParseIP("ff02::1:2")

// iaid is the identity association's id: the last 4 bytes of the MAC,
// as nclient6 does for IA_NA.
func (r *ipv6Runner) iaid() [4]byte {
	var id [4]byte
	if len(r.hw) >= 4 {
		copy(id[:], r.hw[len(r.hw)-4:])
	}
	return id
}

// modifiers are what every message of the client carries: its DUID
// (DUID-LL: the same across restarts, so the server hands back the same
// address), the options it asks for, vendor class (16) and vendor options
// (17) as configured.
func (r *ipv6Runner) modifiers() ([]dhcpv6.Modifier, error) {
	mods := []dhcpv6.Modifier{
		dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: r.hw}),
		dhcpv6.WithRequestedOptions(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList),
	}
	ent := uint32(r.cfg.EnterpriseNumber)
	if r.cfg.VendorClass != "" {
		b, err := ParseOptionValue(r.cfg.VendorClass)
		if err != nil {
			return nil, fmt.Errorf("cannot use vendor_class: %w", err)
		}
		mods = append(mods, dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: ent, Data: [][]byte{b}}))
	}
	if len(r.cfg.VendorOptions) > 0 {
		vo, err := r.cfg.vendorOptions()
		if err != nil {
			return nil, err
		}
		opt := &dhcpv6.OptVendorOpts{EnterpriseNumber: ent}
		for _, code := range slices.Sorted(func(yield func(uint16) bool) {
			for c := range vo {
				if !yield(c) {
					return
				}
			}
		}) {
			opt.VendorOpts.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionCode(code), OptionData: vo[code]})
		}
		mods = append(mods, dhcpv6.WithOption(opt))
	}
	return mods, nil
}

// runDHCPv6 runs the uplink's DHCPv6 client until ctx ends: once the
// link-local address has passed DAD, and, in mode auto, once an RA says
// M (stateful) or O (stateless).
func (r *ipv6Runner) runDHCPv6(ctx context.Context) error {
	mode := r.cfg.dhcpv6Mode()
	if mode == DHCPv6Off {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.llReady:
	}
	for mode == DHCPv6Auto {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ra := <-r.raCh:
			switch {
			case ra.Managed:
				mode = DHCPv6Stateful
			case ra.Other:
				mode = DHCPv6Stateless
			}
		}
	}
	r.mu.Lock()
	r.dhcpMode = mode
	ll := r.ll
	r.mu.Unlock()
	r.log.Info("dhcpv6 starts", "mode", mode)

	var conn net.PacketConn
	zone := strconv.Itoa(r.ifindex)
	err := InNamespace(r.ns, func() error {
		var err error
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: ll.AsSlice(), Port: dhcpv6.DefaultClientPort, Zone: zone})
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot open the DHCPv6 client's socket on %s: %w", ll, err)
	}
	c, err := nclient6.NewWithConn(conn, r.hw, nclient6.WithTimeout(time.Second), nclient6.WithRetry(3),
		nclient6.WithBroadcastAddr(&net.UDPAddr{IP: allDHCPv6Servers, Port: dhcpv6.DefaultServerPort, Zone: zone}))
	if err != nil {
		conn.Close()
		return fmt.Errorf("cannot start the DHCPv6 client: %w", err)
	}
	defer c.Close()
	mods, err := r.modifiers()
	if err != nil {
		return err
	}
	if mode == DHCPv6Stateless && r.cfg.dhcpv6Mode() == DHCPv6Auto {
		if err := r.untilManaged(ctx, func(ctx context.Context) error { return r.stateless(ctx, c, mods) }); err != nil {
			return err
		}
		r.mu.Lock()
		r.dhcpMode = DHCPv6Stateful
		r.mu.Unlock()
		r.log.Info("dhcpv6: the router now says M: stateful")
		r.emit("dhcpv6", "the router now says M: stateful")
	} else if mode == DHCPv6Stateless {
		return r.stateless(ctx, c, mods)
	}
	return r.stateful(ctx, c, mods)
}

// untilManaged runs fn until ctx ends (it returns ctx's error) or an RA
// says M (it returns nil): a router that starts handing out addresses by
// DHCPv6 after it said O alone.
func (r *ipv6Runner) untilManaged(ctx context.Context, fn func(context.Context) error) error {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	managed := make(chan struct{})
	go func() {
		for {
			select {
			case <-fctx.Done():
				return
			case ra := <-r.raCh:
				if ra.Managed {
					close(managed)
					stop()
					return
				}
			}
		}
	}()
	err := fn(fctx)
	select {
	case <-managed:
		return nil
	default:
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// retryWait is how long the client waits after a failed exchange before
// it starts over, doubling up to a minute.
func retryWait(n int) time.Duration {
	return min(time.Second<<min(n, 6), time.Minute)
}

// backoff reports a failed exchange and waits before the next one; it
// returns ctx's error once ctx ends.
func (r *ipv6Runner) backoff(ctx context.Context, fails *int, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.dhcpFailed(err)
	*fails++
	return sleep(ctx, retryWait(*fails-1))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stateless asks for DNS with Information-Request, again after the
// reply's information refresh time (RFC 8415 21.23: a day by default).
func (r *ipv6Runner) stateless(ctx context.Context, c *nclient6.Client, mods []dhcpv6.Modifier) error {
	for fails := 0; ; {
		msg, err := dhcpv6.NewMessage(mods...)
		if err != nil {
			return fmt.Errorf("cannot make an Information-Request: %w", err)
		}
		msg.MessageType = dhcpv6.MessageTypeInformationRequest
		msg.AddOption(dhcpv6.OptElapsedTime(0))
		reply, err := c.SendAndRead(ctx, c.RemoteAddr(), msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
		if err != nil {
			if err := r.backoff(ctx, &fails, fmt.Errorf("no reply to Information-Request: %w", err)); err != nil {
				return err
			}
			continue
		}
		fails = 0
		l := leaseFromV6(reply)
		r.setLease(l)
		r.emit("dhcpv6", fmt.Sprintf("stateless: dns %v search %v", l.DNS, l.Search))
		// Again after the refresh time, or at once when the carrier
		// returns (another network may be behind it).
		if _, err := r.wait(ctx, reply.Options.InformationRefreshTime(24*time.Hour)); err != nil {
			return err
		}
	}
}

// stateful gets a lease (Solicit, Request), puts its addresses on the
// link with their lifetimes, renews it at T1 (Renew to its server),
// rebinds at T2 (Rebind to any), and when it runs out removes them and
// starts over.
func (r *ipv6Runner) stateful(ctx context.Context, c *nclient6.Client, mods []dhcpv6.Modifier) error {
	if r.cfg.PrefixDelegation > 0 {
		hint := &dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(r.cfg.PrefixDelegation, 128)}}
		mods = append(mods, dhcpv6.WithIAPD(r.iaid(), hint))
	}
	for fails := 0; ; {
		adv, err := c.Solicit(ctx, mods...)
		var reply *dhcpv6.Message
		if err == nil {
			reply, err = c.Request(ctx, adv, mods...)
		}
		if err == nil {
			err = replyError(reply)
		}
		if err != nil {
			if err := r.backoff(ctx, &fails, fmt.Errorf("no lease: %w", err)); err != nil {
				return err
			}
			continue
		}
		fails = 0
		if err := r.bound(ctx, c, mods, reply); err != nil {
			return err
		}
	}
}

// bound keeps the lease of reply until it runs out (it returns nil then)
// or ctx ends.
func (r *ipv6Runner) bound(ctx context.Context, c *nclient6.Client, mods []dhcpv6.Modifier, reply *dhcpv6.Message) error {
	l := leaseFromV6(reply)
	if err := r.applyLease(l); err != nil {
		r.dhcpFailed(err)
	}
	server := reply.Options.ServerID()
	for {
		end := l.Acquired.Add(l.valid())
		var next *dhcpv6.Message
		kicked := false
		for _, step := range []struct {
			at   time.Time
			kind dhcpv6.MessageType
		}{{l.renewAt(), dhcpv6.MessageTypeRenew}, {l.rebindAt(), dhcpv6.MessageTypeRebind}} {
			var err error
			if kicked, err = r.wait(ctx, time.Until(step.at)); err != nil {
				r.release(c, mods, reply)
				return err
			} else if kicked {
				break
			}
			until := end
			if step.kind == dhcpv6.MessageTypeRenew {
				until = l.rebindAt()
			}
			next = r.extend(ctx, c, mods, reply, server, step.kind, until)
			if next != nil {
				break
			}
		}
		if kicked {
			if r.confirm(ctx, c, mods, reply) {
				continue
			}
			r.dropLease(l, "the link's carrier came back on another network: the server says the lease is not on link")
			return nil
		}
		if next == nil {
			if err := sleep(ctx, time.Until(end)); err != nil {
				return err
			}
			r.dropLease(l, "lease ran out")
			return nil
		}
		reply, l = next, leaseFromV6(next)
		if err := r.applyLease(l); err != nil {
			r.dhcpFailed(err)
		}
	}
}

// dropLease takes a lease that ended off the link and out of the
// resolver.
func (r *ipv6Runner) dropLease(l *DHCPv6Lease, why string) {
	r.log.Warn("dhcpv6 lease ends", "why", why)
	r.emit("dhcpv6", why)
	r.mu.Lock()
	r.lease = nil
	r.mu.Unlock()
	r.removeLease(l)
	r.syncDNS(nil)
}

// extend sends Renew (to server) or Rebind (to any) until a good reply
// or until; nil without one.
func (r *ipv6Runner) extend(ctx context.Context, c *nclient6.Client, mods []dhcpv6.Modifier, last *dhcpv6.Message, server dhcpv6.DUID, kind dhcpv6.MessageType, until time.Time) *dhcpv6.Message {
	for fails := 0; time.Now().Before(until); fails++ {
		msg, err := dhcpv6.NewMessage(mods...)
		if err != nil {
			return nil
		}
		msg.MessageType = kind
		msg.AddOption(dhcpv6.OptElapsedTime(0))
		if kind == dhcpv6.MessageTypeRenew && server != nil {
			msg.AddOption(dhcpv6.OptServerID(server))
		}
		for _, ia := range last.Options.IANA() {
			msg.AddOption(ia)
		}
		for _, pd := range last.Options.IAPD() {
			msg.AddOption(pd)
		}
		reply, err := c.SendAndRead(ctx, c.RemoteAddr(), msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
		if err == nil {
			err = replyError(reply)
		}
		if err == nil {
			return reply
		}
		if ctx.Err() != nil {
			return nil
		}
		r.log.Info("dhcpv6 "+kind.String(), "err", err)
		if sleep(ctx, min(retryWait(fails), time.Until(until))) != nil {
			return nil
		}
	}
	return nil
}

// replyError is the status of a reply or its IA_NA and IA_PD that says
// no, or nil.
func replyError(m *dhcpv6.Message) error {
	st := m.Options.Status()
	for _, ia := range m.Options.IANA() {
		if s := ia.Options.Status(); s != nil && st == nil {
			st = s
		}
	}
	if st != nil && st.StatusCode != iana.StatusSuccess {
		return fmt.Errorf("server says %s: %s", st.StatusCode, st.StatusMessage)
	}
	if len(m.Options.IANA()) == 0 && len(m.Options.IAPD()) == 0 {
		return errors.New("reply without an address or prefix")
	}
	return nil
}

// leaseFromV6 reads a reply.
func leaseFromV6(m *dhcpv6.Message) *DHCPv6Lease {
	l := &DHCPv6Lease{Acquired: time.Now()}
	if sid := m.Options.ServerID(); sid != nil {
		l.Server = hex.EncodeToString(sid.ToBytes())
	}
	for _, ia := range m.Options.IANA() {
		l.T1, l.T2 = ia.T1, ia.T2
		for _, a := range ia.Options.Addresses() {
			if ip, ok := netip.AddrFromSlice(a.IPv6Addr); ok && a.ValidLifetime > 0 {
				l.Addresses = append(l.Addresses, DHCPv6Addr{Address: ip, Preferred: a.PreferredLifetime, Valid: a.ValidLifetime})
			}
		}
	}
	for _, pd := range m.Options.IAPD() {
		if l.T1 == 0 {
			l.T1, l.T2 = pd.T1, pd.T2
		}
		for _, p := range pd.Options.Prefixes() {
			if p.Prefix == nil || p.ValidLifetime == 0 {
				continue
			}
			ip, ok := netip.AddrFromSlice(p.Prefix.IP)
			ones, _ := p.Prefix.Mask.Size()
			if ok && !l.Prefix.IsValid() {
				l.Prefix = netip.PrefixFrom(ip, ones)
				l.PrefixPreferred, l.PrefixValid = p.PreferredLifetime, p.ValidLifetime
			}
		}
	}
	for _, ip := range m.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip); ok {
			l.DNS = append(l.DNS, a)
		}
	}
	if sl := m.Options.DomainSearchList(); sl != nil {
		l.Search = slices.Clone(sl.Labels)
	}
	return l
}

// applyLease puts the lease's addresses on the link as /128s with their
// lifetimes (the kernel removes one whose valid lifetime ends; the RA's
// prefix gives the on-link route), drops the addresses an earlier lease
// had and this one has not, and gives its DNS to the resolver.
func (r *ipv6Runner) applyLease(l *DHCPv6Lease) error {
	r.mu.Lock()
	old := r.lease
	r.lease, r.dhcpErr = l, nil
	r.mu.Unlock()
	var errs []error
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: r.ifindex}}
	for _, a := range l.Addresses {
		addr := &netlink.Addr{
			IPNet:       &net.IPNet{IP: a.Address.AsSlice(), Mask: net.CIDRMask(128, 128)},
			PreferedLft: lifetimeSeconds(a.Preferred), ValidLft: lifetimeSeconds(a.Valid),
			Flags: unix.IFA_F_NOPREFIXROUTE,
		}
		if err := r.nl.AddrReplace(link, addr); err != nil {
			errs = append(errs, fmt.Errorf("cannot add %s: %w", a.Address, err))
		}
	}
	if old != nil {
		gone := *old
		gone.Addresses = slices.DeleteFunc(slices.Clone(old.Addresses), func(o DHCPv6Addr) bool {
			return slices.ContainsFunc(l.Addresses, func(n DHCPv6Addr) bool { return n.Address == o.Address })
		})
		r.removeLease(&gone)
	}
	r.syncDNS(nil)
	detail := fmt.Sprintf("lease from %s:", l.Server)
	for _, a := range l.Addresses {
		detail += fmt.Sprintf(" %s (preferred %s, valid %s)", a.Address, a.Preferred, a.Valid)
	}
	if l.Prefix.IsValid() {
		detail += fmt.Sprintf(" delegated prefix %s (valid %s)", l.Prefix, l.PrefixValid)
	}
	r.log.Info("dhcpv6 lease", "addresses", l.Addresses, "prefix", l.Prefix, "dns", l.DNS)
	r.emit("dhcpv6", detail)
	return errors.Join(errs...)
}

// lifetimeSeconds is a lifetime as netlink takes it; the protocol's
// infinity (0xffffffff s) stays the kernel's. netlink sends the int as a
// uint32: on 32-bit ARM infinity is -1 here, which converts to the same
// 0xffffffff (a constant would not compile there).
func lifetimeSeconds(d time.Duration) int {
	s := d / time.Second
	if s >= 0xffffffff {
		forever := ^uint32(0)
		return int(forever)
	}
	return int(s)
}

// setLease keeps a stateless reply's DNS.
func (r *ipv6Runner) setLease(l *DHCPv6Lease) {
	r.mu.Lock()
	r.lease, r.dhcpErr = l, nil
	r.mu.Unlock()
	r.syncDNS(nil)
}

func (r *ipv6Runner) dhcpFailed(err error) {
	r.mu.Lock()
	r.dhcpErr = err
	r.mu.Unlock()
	r.log.Warn("dhcpv6", "err", err)
	r.emit("dhcpv6", err.Error())
}

// removeLease takes the lease's addresses off the link.
func (r *ipv6Runner) removeLease(l *DHCPv6Lease) {
	link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: r.ifindex}}
	for _, a := range l.Addresses {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Address.AsSlice(), Mask: net.CIDRMask(128, 128)}}
		if err := r.nl.AddrDel(link, addr); err != nil && !gone(err) {
			r.log.Warn("cannot remove a DHCPv6 address", "address", a.Address, "err", err)
		}
	}
}
