package wifi

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHotspotDNS: any datagram a hotspot client sends the captive DNS
// gets no answer, or one that keeps the query's id, has QR set and holds
// the question echoed; never a panic.
func FuzzHotspotDNS(f *testing.F) {
	q := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	f.Add(q)
	f.Add(q[:12])
	f.Add(append(q[:len(q)-4:len(q)-4], 0, 28, 0, 1)) // AAAA
	f.Add([]byte{0, 0, 0x80, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c})
	addr := netip.MustParseAddr("192.168.4.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		a := dnsAnswer(b, addr)
		if a == nil {
			return
		}
		if len(a) < dnsHeader || len(b) < 2 || a[0] != b[0] || a[1] != b[1] {
			t.Fatalf("answer % x to % x: not the query's id", a, b)
		}
		if binary.BigEndian.Uint16(a[2:])&dnsFlagQR == 0 {
			t.Fatalf("answer % x without QR", a)
		}
		if len(a) > 512 {
			t.Fatalf("answer of %d bytes: more than a UDP DNS message", len(a))
		}
	})
}

// packetSink is a PacketConn that keeps what the server writes.
type packetSink struct {
	net.PacketConn
	sent [][]byte
}

func (p *packetSink) WriteTo(b []byte, _ net.Addr) (int, error) {
	p.sent = append(p.sent, append([]byte(nil), b...))
	return len(b), nil
}

// FuzzHotspotDHCP: any message a hotspot client sends the setup DHCP
// server is answered from the pool or not at all; never a panic, never an
// address outside the pool.
func FuzzHotspotDHCP(f *testing.F) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, t := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease} {
		m, _ := dhcpv4.New(dhcpv4.WithMessageType(t), dhcpv4.WithHwAddr(mac),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 4, 20))))
		f.Add(m.ToBytes())
	}
	server := netip.MustParsePrefix("192.168.4.1/24")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		s := &HotspotDHCP{cfg: HotspotDHCPConfig{Interface: "wlan0", Server: server, Lease: time.Minute},
			log: slog.New(slog.NewTextHandler(io.Discard, nil)), leases: map[string]netip.Addr{}}
		s.first, s.last = poolOf(server)
		conn := &packetSink{}
		s.handle(conn, &net.UDPAddr{IP: net.IPv4bcast, Port: 68}, m)
		for _, raw := range conn.sent {
			r, err := dhcpv4.FromBytes(raw)
			if err != nil {
				t.Fatalf("the server sent a message it cannot read back: %v", err)
			}
			if a, _ := netip.AddrFromSlice(r.YourIPAddr.To4()); a.IsValid() && !a.IsUnspecified() && !s.inPool(a) {
				t.Fatalf("offered %s, outside the pool %s-%s", a, s.first, s.last)
			}
		}
	})
}
