package network

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// requested is the parameter request list (option 55) of every message.
var requested = []byte{
	1,   // subnet mask
	3,   // router
	6,   // DNS servers
	15,  // domain name
	26,  // interface MTU
	28,  // broadcast address
	42,  // NTP servers
	51,  // lease time
	54,  // server identifier
	58,  // T1
	59,  // T2
	119, // domain search (RFC 3397)
	121, // classless static routes (RFC 3442): an IPTV platform's routes
	249, // the same, Microsoft's code, which some IPTV servers still send
}

// fixedOptions are the options every message of the client carries, the
// same bytes each time: 60, 61, 55, 57 and the configured extras.
func (c *DHCPClient) fixedOptions() dhcpv4.Options {
	o := dhcpv4.Options{}
	for code, b := range c.cfg.Options {
		o[code] = b
	}
	if c.cfg.VendorClass != nil {
		o[dhcpv4.OptionClassIdentifier.Code()] = c.cfg.VendorClass
	}
	switch {
	case c.cfg.ClientID != nil:
		o[dhcpv4.OptionClientIdentifier.Code()] = c.cfg.ClientID
	case c.cfg.ClientIDMAC:
		o[dhcpv4.OptionClientIdentifier.Code()] = append([]byte{byte(iana.HWTypeEthernet)}, c.hw...)
	}
	o[dhcpv4.OptionParameterRequestList.Code()] = requested
	// 1500 bytes: what a box's Ethernet uplink carries unfragmented.
	o[dhcpv4.OptionMaximumDHCPMessageSize.Code()] = []byte{1500 >> 8, 1500 & 0xff}
	return o
}

// SentOptions is the options the client puts in every message (for
// `net show`), by code. Before Run it holds only what the config gave.
func (c *DHCPClient) SentOptions() map[uint8][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.fixed)
}

// message is a new message of the current exchange.
func (c *DHCPClient) message(t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		ClientHWAddr:  c.hw,
		TransactionID: c.xid,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options:       maps.Clone(c.fixed),
	}
	m.UpdateOption(dhcpv4.OptMessageType(t))
	return m
}

// leaseFrom reads the lease an ACK grants; sent is when the REQUEST it
// answers was sent.
func leaseFrom(ack *dhcpv4.DHCPv4, sent time.Time) (*Lease, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return nil, errors.New("cannot use DHCPACK: no address")
	}
	d := ack.IPAddressLeaseTime(0)
	if d <= 0 {
		return nil, errors.New("cannot use DHCPACK: no lease time")
	}
	bits := 0
	if mask := ack.SubnetMask(); mask != nil {
		bits, _ = mask.Size()
	}
	if bits == 0 {
		bits = defaultBits(ip)
	}
	l := &Lease{
		Address:  netip.PrefixFrom(ip, bits),
		Domain:   ack.DomainName(),
		Search:   domainSearch(ack),
		Acquired: sent,
		Duration: d,
		T1:       ack.IPAddressRenewalTime(d / 2),
		T2:       ack.IPAddressRebindingTime(d * 7 / 8),
	}
	if l.T2 <= 0 || l.T2 > d {
		l.T2 = d * 7 / 8
	}
	if l.T1 <= 0 || l.T1 > l.T2 {
		l.T1 = min(d/2, l.T2)
	}
	l.Server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if routes, router, ok := classlessRoutes(ack); ok {
		l.Routes, l.Router = routes, router
	} else if rs := ack.Router(); len(rs) > 0 {
		l.Router, _ = netip.AddrFromSlice(rs[0].To4())
	}
	for _, s := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(s.To4()); ok {
			l.DNS = append(l.DNS, a)
		}
	}
	return l, nil
}

// domainSearch is option 119 (RFC 3397) of m: DNS names in wire format
// with compression pointers, decoded by the library. It is nil when the
// server sent none, or when the option is malformed in any way: a part
// of a broken list would send lookups to domains nobody configured. The
// library alone follows a pointer past the end as the end of the name,
// so the option is checked first (wellFormedNames). Names resolv.conf
// cannot carry (see validSearchDomain) are left out.
func domainSearch(m *dhcpv4.DHCPv4) []string {
	raw := m.Options.Get(dhcpv4.OptionDNSDomainSearchList)
	if len(raw) == 0 || !wellFormedNames(raw) {
		return nil
	}
	labels := m.DomainSearch()
	if labels == nil {
		return nil
	}
	var out []string
	for _, d := range labels.Labels {
		if validSearchDomain(d) {
			out = append(out, d)
		}
	}
	return out
}

// wellFormedNames says whether b is a sequence of whole RFC 1035 names:
// each ends with the root label or a pointer, every length fits in b,
// and every pointer goes back to the start of a label of an earlier
// name, so that following pointers cannot loop or leave b.
func wellFormedNames(b []byte) bool {
	labelAt := map[int]bool{}
	for i := 0; i < len(b); {
		start := i
	name:
		for {
			if i >= len(b) {
				return false // a name without its end
			}
			n := int(b[i])
			switch {
			case n == 0:
				i++
				break name
			case n&0xc0 == 0xc0:
				if i+1 >= len(b) {
					return false
				}
				off := (n&0x3f)<<8 | int(b[i+1])
				if off >= start || !labelAt[off] {
					return false
				}
				i += 2
				break name
			case n&0xc0 != 0:
				return false // label types 01 and 10: extended, unused here
			case i+1+n > len(b):
				return false
			default:
				labelAt[i] = true
				i += 1 + n
			}
		}
	}
	return true
}

// defaultBits is the classful prefix length, for a server that sends no
// subnet mask.
func defaultBits(ip netip.Addr) int {
	switch b := ip.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}

// parseCode reads an option code key of the config file.
func parseCode(k string) (uint8, error) {
	n, err := strconv.Atoi(k)
	if err != nil || n < 1 || n > 254 {
		return 0, fmt.Errorf("option code %q is not a number from 1 to 254", k)
	}
	return uint8(n), nil
}
