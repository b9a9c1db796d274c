package wifi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
)

// HotspotDNS answers every name with the hotspot's own address, so a
// phone's captive-portal probe (connectivitycheck.gstatic.com,
// captive.apple.com, www.msftconnecttest.com…) reaches the setup page.
// It answers A queries only; every other type gets an empty answer, so
// the phone falls back to IPv4.
type HotspotDNS struct {
	conn *net.UDPConn
	addr netip.Addr
	log  *slog.Logger
	done chan struct{}
}

// StartHotspotDNS serves on addr port 53 until Close.
func StartHotspotDNS(addr netip.Addr, log *slog.Logger) (*HotspotDNS, error) {
	if log == nil {
		log = slog.Default()
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 53)))
	if err != nil {
		return nil, fmt.Errorf("cannot open the hotspot's DNS port: %w", err)
	}
	d := &HotspotDNS{conn: conn, addr: addr, log: log.With("component", "hotspot-dns"), done: make(chan struct{})}
	go d.serve()
	return d, nil
}

// Close stops serving and waits for the server to end.
func (d *HotspotDNS) Close() error {
	err := d.conn.Close()
	<-d.done
	return err
}

func (d *HotspotDNS) serve() {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, peer, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				d.log.Warn("DNS server stopped", "err", err)
			}
			return
		}
		if resp := dnsAnswer(buf[:n], d.addr); resp != nil {
			d.conn.WriteToUDPAddrPort(resp, peer)
		}
	}
}

// DNS wire constants (RFC 1035).
const (
	dnsTypeA    = 1
	dnsClassIN  = 1
	dnsHeader   = 12
	dnsFlagQR   = 0x8000
	dnsFlagAA   = 0x0400
	dnsFlagRD   = 0x0100
	dnsFlagRA   = 0x0080
	dnsRcodeFmt = 1 // format error
)

// dnsMaxName is the longest a name may be on the wire (RFC 1035 2.3.4).
const dnsMaxName = 255

// dnsAnswer builds the reply to one query: the question echoed, and for
// an A question of class IN one answer, addr with a one-minute TTL. A
// message that is no standard query of one question gets nil (dropped)
// or a format error.
func dnsAnswer(q []byte, addr netip.Addr) []byte {
	if len(q) < dnsHeader {
		return nil
	}
	flags := binary.BigEndian.Uint16(q[2:])
	if flags&dnsFlagQR != 0 || (flags>>11)&0xf != 0 {
		return nil // a response, or not a standard query
	}
	qd := binary.BigEndian.Uint16(q[4:])
	// Walk the name: labels up to a zero byte; no compression in a
	// question.
	i := dnsHeader
	for qd == 1 {
		if i >= len(q) {
			qd = 0
			break
		}
		l := int(q[i])
		if l == 0 {
			i++
			break
		}
		if l > 63 {
			qd = 0
			break
		}
		i += 1 + l
		if i-dnsHeader > dnsMaxName {
			qd = 0 // longer than a name may be: the echo would not fit 512 bytes
			break
		}
	}
	out := make([]byte, dnsHeader, 64)
	copy(out, q[:2])
	rflags := uint16(dnsFlagQR|dnsFlagAA|dnsFlagRA) | flags&dnsFlagRD
	if qd != 1 || i+4 > len(q) {
		binary.BigEndian.PutUint16(out[2:], rflags|dnsRcodeFmt)
		return out
	}
	question := q[dnsHeader : i+4]
	qtype, qclass := binary.BigEndian.Uint16(q[i:]), binary.BigEndian.Uint16(q[i+2:])
	binary.BigEndian.PutUint16(out[2:], rflags)
	binary.BigEndian.PutUint16(out[4:], 1)
	out = append(out, question...)
	if qtype != dnsTypeA || qclass != dnsClassIN {
		return out
	}
	binary.BigEndian.PutUint16(out[6:], 1)
	a := addr.As4()
	out = append(out,
		0xc0, dnsHeader, // the name: a pointer to the question's
		0, dnsTypeA, 0, dnsClassIN,
		0, 0, 0, 60, // TTL
		0, 4, a[0], a[1], a[2], a[3])
	return out
}
