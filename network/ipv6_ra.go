package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
)

// RA is what the agent takes from a router advertisement (RFC 4861
// 4.2): the kernel makes the SLAAC addresses and the default route from
// the same message, but keeps neither its DNS options (RFC 8106) nor
// anything a DHCPv6 client needs to know (the M and O flags).
type RA struct {
	Router netip.Addr `json:"router"`
	// Managed (M): addresses come from DHCPv6. Other (O): other
	// settings (DNS) come from DHCPv6.
	Managed bool `json:"managed,omitempty"`
	Other   bool `json:"other,omitempty"`
	// RouterLifetime 0: the router is no default router.
	RouterLifetime time.Duration `json:"router_lifetime"`
	// Prefixes are the prefix information options with the A flag
	// (SLAAC) set.
	Prefixes []netip.Prefix `json:"prefixes,omitempty"`
	// DNS (RDNSS, option 25) and Search (DNSSL, option 31), each with
	// its option's lifetime (0: withdrawn).
	DNS            []netip.Addr  `json:"dns,omitempty"`
	DNSLifetime    time.Duration `json:"dns_lifetime,omitempty"`
	Search         []string      `json:"search,omitempty"`
	SearchLifetime time.Duration `json:"search_lifetime,omitempty"`
}

// ICMPv6 types and RA option types.
const (
	icmp6RouterSolicit = 133
	icmp6RouterAdvert  = 134
	ndOptPrefixInfo    = 3
	ndOptRDNSS         = 25
	ndOptDNSSL         = 31
)

var errNotRA = errors.New("not a router advertisement")

// ParseRA decodes an ICMPv6 router advertisement, from its type byte
// on, sent by from.
func ParseRA(from netip.Addr, b []byte) (RA, error) {
	if len(b) < 16 || b[0] != icmp6RouterAdvert || b[1] != 0 {
		return RA{}, errNotRA
	}
	ra := RA{
		Router:         from,
		Managed:        b[5]&0x80 != 0,
		Other:          b[5]&0x40 != 0,
		RouterLifetime: time.Duration(binary.BigEndian.Uint16(b[6:8])) * time.Second,
	}
	opts := b[16:]
	for len(opts) > 0 {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return RA{}, fmt.Errorf("router advertisement from %s: option of type %d runs past the message", from, opts[0])
		}
		o := opts[:int(opts[1])*8]
		opts = opts[len(o):]
		switch o[0] {
		case ndOptPrefixInfo:
			if len(o) != 32 || o[3]&0x40 == 0 || o[2] > 128 {
				continue
			}
			a := netip.AddrFrom16([16]byte(o[16:32]))
			ra.Prefixes = append(ra.Prefixes, netip.PrefixFrom(a, int(o[2])).Masked())
		case ndOptRDNSS:
			if len(o) < 24 || (len(o)-8)%16 != 0 {
				continue
			}
			ra.DNSLifetime = time.Duration(binary.BigEndian.Uint32(o[4:8])) * time.Second
			for a := o[8:]; len(a) >= 16; a = a[16:] {
				ra.DNS = append(ra.DNS, netip.AddrFrom16([16]byte(a[:16])))
			}
		case ndOptDNSSL:
			if len(o) < 16 {
				continue
			}
			ra.SearchLifetime = time.Duration(binary.BigEndian.Uint32(o[4:8])) * time.Second
			ra.Search = append(ra.Search, dnsNames(o[8:])...)
		}
	}
	return ra, nil
}

// dnsNames decodes uncompressed DNS names (RFC 1035 3.1) until the
// padding of zero bytes; a broken name ends the list.
func dnsNames(b []byte) []string {
	var out []string
	var labels []string
	for len(b) > 0 {
		n := int(b[0])
		switch {
		case n == 0 && len(labels) == 0:
			return out // padding
		case n == 0:
			out = append(out, strings.Join(labels, "."))
			labels = nil
			b = b[1:]
			continue
		case n > 63 || 1+n > len(b):
			return out
		}
		labels = append(labels, string(b[1:1+n]))
		b = b[1+n:]
	}
	return out
}

// raConn is an ICMPv6 socket that reads the router advertisements of one
// link, made in the uplinks' namespace; the kernel drops every other
// ICMPv6 type before it reaches the socket (ICMP6_FILTER).
type raConn struct {
	pc      *ipv6.PacketConn
	ifindex int
}

func openRAConn(ns netns.NsHandle, ifindex int) (*raConn, error) {
	var c net.PacketConn
	err := onThreadIn(ns, func() error {
		var err error
		c, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open an ICMPv6 socket: %w", err)
	}
	pc := ipv6.NewPacketConn(c)
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(icmp6RouterAdvert)
	if err := pc.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot filter the ICMPv6 socket to router advertisements: %w", err)
	}
	if err := pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagHopLimit, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot ask for the link of each packet: %w", err)
	}
	return &raConn{pc: pc, ifindex: ifindex}, nil
}

// solicit sends a router solicitation to every router of the link, so
// the first RA comes now, not at the router's next unsolicited one.
func (c *raConn) solicit() error {
	msg := []byte{icmp6RouterSolicit, 0, 0, 0, 0, 0, 0, 0}
	cm := &ipv6.ControlMessage{HopLimit: 255, IfIndex: c.ifindex}
	_, err := c.pc.WriteTo(msg, cm, &net.IPAddr{IP: net.ParseIP("ff02::2")})
	if err != nil {
		return fmt.Errorf("cannot send a router solicitation: %w", err)
	}
	return nil
}

// read returns the next valid RA of the link: from a link-local address
// with hop limit 255 (RFC 4861 6.1.2); others are skipped. It returns an
// error once the socket is closed.
func (c *raConn) read() (RA, error) {
	buf := make([]byte, 1500)
	for {
		n, cm, src, err := c.pc.ReadFrom(buf)
		if err != nil {
			return RA{}, err
		}
		if cm == nil || cm.IfIndex != c.ifindex || cm.HopLimit != 255 {
			continue
		}
		ip, ok := src.(*net.IPAddr)
		if !ok {
			continue
		}
		from, ok := netip.AddrFromSlice(ip.IP)
		if !ok || !from.IsLinkLocalUnicast() {
			continue
		}
		ra, err := ParseRA(from, buf[:n])
		if err != nil {
			continue
		}
		return ra, nil
	}
}

func (c *raConn) Close() error { return c.pc.Close() }
