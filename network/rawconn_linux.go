package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RawConn carries DHCP messages through a packet socket bound to one
// link, so that it works before the link has an address and whatever
// the routing table says. A kernel filter lets only UDP to port 68 in.
type RawConn struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int

	mu   sync.Mutex
	macs map[netip.Addr]net.HardwareAddr // where each server's replies came from
}

var _ Conn = (*RawConn)(nil)

const (
	clientPort = 68
	serverPort = 67
)

// filterDHCPClient is a classic BPF program run on each IPv4 packet (a
// SOCK_DGRAM packet socket starts at the IP header): keep unfragmented
// UDP to port 68, drop everything else.
var filterDHCPClient = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9},                 // protocol
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 6, K: 17}, // UDP?
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 6},                 // flags, fragment offset
	{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 4, K: 0x1fff},   // a fragment?
	{Code: unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH, K: 0},                // x = IP header length
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_IND, K: 2},                 // UDP destination port
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: 68}, // 68?
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffff},                          // keep
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},                               // drop
}

// OpenRawConn opens a RawConn on the link with index ifindex in the
// network namespace ns (netns.None() for the agent's own). The socket is
// made on a locked thread of its own that enters ns and then ends with
// its goroutine, so no other goroutine ever runs in ns by mistake; the
// socket stays in ns for its life.
func OpenRawConn(ns netns.NsHandle, ifindex int) (*RawConn, error) {
	fd := -1
	err := InNamespace(ns, func() error {
		// Protocol 0 receives nothing until bind, so no packet slips in
		// before the filter.
		s, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("cannot open packet socket: %w", err)
		}
		prog := unix.SockFprog{Len: uint16(len(filterDHCPClient)), Filter: &filterDHCPClient[0]}
		if err := unix.SetsockoptSockFprog(s, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			unix.Close(s)
			return fmt.Errorf("cannot filter packet socket: %w", err)
		}
		if err := unix.Bind(s, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}); err != nil {
			unix.Close(s)
			return fmt.Errorf("cannot bind packet socket to link %d: %w", ifindex, err)
		}
		fd = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dhcp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot use packet socket: %w", err)
	}
	return &RawConn{f: f, rc: rc, ifindex: ifindex, macs: map[netip.Addr]net.HardwareAddr{}}, nil
}

// Send sends m in a UDP datagram from port 68 to dst port 67, from the
// message's ciaddr. A broadcast goes to the broadcast MAC; a unicast to
// the MAC that server's replies came from (or broadcast, not yet known).
func (c *RawConn) Send(m *dhcpv4.DHCPv4, dst netip.Addr) error {
	src, _ := netip.AddrFromSlice(m.ClientIPAddr.To4())
	if !src.IsValid() {
		src = netip.IPv4Unspecified()
	}
	pkt := udp4(m.ToBytes(), src, dst, clientPort, serverPort)
	hw := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	c.mu.Lock()
	if mac, ok := c.macs[dst]; ok {
		hw = mac
	}
	c.mu.Unlock()
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: c.ifindex, Halen: uint8(len(hw))}
	copy(to.Addr[:], hw)
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), pkt, 0, to)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("cannot send DHCP %s: %w", m.MessageType(), err)
	}
	return nil
}

// Receive returns the next DHCP message to port 68 that parses.
func (c *RawConn) Receive() (*dhcpv4.DHCPv4, error) {
	buf := make([]byte, 65536)
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil, net.ErrClosed
			}
			return nil, fmt.Errorf("cannot read packet socket: %w", err)
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		if ll != nil && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		srcIP, payload, ok := parseUDP4(buf[:n], clientPort)
		if !ok {
			continue
		}
		m, err := dhcpv4.FromBytes(payload)
		if err != nil {
			continue
		}
		if ll != nil && ll.Halen == 6 {
			c.mu.Lock()
			c.macs[srcIP] = net.HardwareAddr(append([]byte(nil), ll.Addr[:6]...))
			c.mu.Unlock()
		}
		return m, nil
	}
}

// Close closes the socket; a blocked Receive returns net.ErrClosed.
func (c *RawConn) Close() error { return c.f.Close() }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// udp4 wraps payload in UDP and IPv4 headers.
func udp4(payload []byte, src, dst netip.Addr, sport, dport uint16) []byte {
	const ipLen, udpLen = 20, 8
	b := make([]byte, ipLen+udpLen+len(payload))
	ip, udp := b[:ipLen], b[ipLen:ipLen+udpLen]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ^sum16(ip, 0))

	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(payload)))
	copy(b[ipLen+udpLen:], payload)
	pseudo := make([]byte, 12)
	copy(pseudo[0:4], s4[:])
	copy(pseudo[4:8], d4[:])
	pseudo[9] = unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(udpLen+len(payload)))
	cs := ^sum16(b[ipLen:], sum16(pseudo, 0))
	if cs == 0 {
		cs = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(udp[6:], cs)
	return b
}

// sum16 is the ones' complement sum of b (RFC 1071), added to initial.
func sum16(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// parseUDP4 returns the source address and payload of an IPv4 UDP packet
// to port, or false.
func parseUDP4(b []byte, port uint16) (netip.Addr, []byte, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return netip.Addr{}, nil, false
	}
	hl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if hl < 20 || total < hl+8 || total > len(b) || b[9] != unix.IPPROTO_UDP {
		return netip.Addr{}, nil, false
	}
	udp := b[hl:total]
	if binary.BigEndian.Uint16(udp[2:]) != port {
		return netip.Addr{}, nil, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return netip.Addr{}, nil, false
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	return src, udp[8:ulen], true
}
