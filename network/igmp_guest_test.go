//go:build lab

package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// IGMPReport is one IGMP membership report or leave a capture saw: the
// link it arrived on in the capture's namespace (a VLAN's parent adds
// "/vlan N" from the frame's tag), how it was carried ("ip" or "pppoe":
// inside a PPPoE session), the IGMP version it speaks and the groups it
// names.
type IGMPReport struct {
	Link    string
	Carrier string
	Version int // 1, 2 or 3
	Leave   bool
	Groups  []netip.Addr
}

func (r IGMPReport) String() string {
	kind := "report"
	if r.Leave {
		kind = "leave"
	}
	return fmt.Sprintf("IGMPv%d %s %v on %s (%s)", r.Version, kind, r.Groups, r.Link, r.Carrier)
}

// IGMPCapture reads every IGMP report arriving on any link of one
// namespace, as tcpdump would (a packet socket, before the IP layer
// decides whether the namespace wants the packet): plain IP on a VLAN or
// a PPP link, or IP inside PPPoE session frames. Exported for the agent's
// board tests (package network_test).
type IGMPCapture struct {
	f    *os.File
	mu   sync.Mutex
	seen []IGMPReport
	more chan struct{} // closed and replaced at each report
	done chan struct{}
}

// CaptureIGMP starts a capture in ns until Stop or the test's end.
func CaptureIGMP(t testing.TB, ns netns.NsHandle) *IGMPCapture {
	t.Helper()
	c := &IGMPCapture{done: make(chan struct{}), more: make(chan struct{})}
	var h *netlink.Handle
	err := InNamespace(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			unix.Close(fd)
			return err
		}
		c.f = os.NewFile(uintptr(fd), "igmp-capture") // non-blocking: Close ends a read
		h, err = netlink.NewHandleAt(ns)
		return err
	})
	must(t, err)
	names := map[int]string{}
	linkName := func(idx int) string {
		if n, ok := names[idx]; ok {
			return n
		}
		n := fmt.Sprintf("ifindex %d", idx)
		if l, err := h.LinkByIndex(idx); err == nil {
			n = l.Attrs().Name
		}
		names[idx] = n
		return n
	}
	rc, err := c.f.SyscallConn()
	must(t, err)
	go func() {
		defer close(c.done)
		defer h.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, 256)
		for {
			var n, oobn int
			var from unix.Sockaddr
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
				return !errors.Is(rerr, unix.EAGAIN)
			})
			if err != nil {
				return // closed
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if rerr != nil || !ok || ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			r, ok := parseIGMPFrame(htons(ll.Protocol), buf[:n])
			if !ok {
				continue
			}
			r.Link = linkName(ll.Ifindex)
			if tci, ok := frameTag(nil, oob[:oobn]); ok {
				r.Link += fmt.Sprintf("/vlan %d", tci&0xfff)
			}
			c.mu.Lock()
			c.seen = append(c.seen, r)
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Stop() })
	return c
}

// Reports is what the capture saw so far.
func (c *IGMPCapture) Reports() []IGMPReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]IGMPReport(nil), c.seen...)
}

// Wait waits for a report ok accepts, seen already or to come; false
// after timeout.
func (c *IGMPCapture) Wait(timeout time.Duration, ok func(IGMPReport) bool) (IGMPReport, bool) {
	deadline := time.After(timeout)
	for n := 0; ; {
		c.mu.Lock()
		seen, more := c.seen[n:], c.more
		n = len(c.seen)
		c.mu.Unlock()
		for _, r := range seen {
			if ok(r) {
				return r, true
			}
		}
		select {
		case <-more:
		case <-c.done:
			return IGMPReport{}, false
		case <-deadline:
			return IGMPReport{}, false
		}
	}
}

// Stop ends the capture and returns what it saw.
func (c *IGMPCapture) Stop() []IGMPReport {
	c.f.Close()
	<-c.done
	return c.Reports()
}

// parseIGMPFrame reads an IGMP report out of a frame's payload (the link
// header already taken off by the packet socket): an IPv4 packet, or a
// PPPoE session frame carrying one.
func parseIGMPFrame(proto uint16, b []byte) (IGMPReport, bool) {
	r := IGMPReport{Carrier: "ip"}
	switch proto {
	case unix.ETH_P_IP:
	case unix.ETH_P_PPP_SES:
		// PPPoE header (6 bytes), then the PPP protocol: 0x0021 is IPv4.
		if len(b) < 8 || binary.BigEndian.Uint16(b[6:8]) != 0x0021 {
			return r, false
		}
		b, r.Carrier = b[8:], "pppoe"
	default:
		return r, false
	}
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_IGMP {
		return r, false
	}
	ihl := int(b[0]&0xf) * 4
	if len(b) < ihl+8 {
		return r, false
	}
	g := b[ihl:]
	group := func(at int) netip.Addr { return netip.AddrFrom4([4]byte(g[at : at+4])) }
	switch g[0] {
	case 0x12: // v1 report
		r.Version, r.Groups = 1, []netip.Addr{group(4)}
	case 0x16: // v2 report
		r.Version, r.Groups = 2, []netip.Addr{group(4)}
	case 0x17: // v2 leave
		r.Version, r.Leave, r.Groups = 2, true, []netip.Addr{group(4)}
	case 0x22: // v3 report: group records (RFC 3376 §4.2)
		r.Version = 3
		at := 8
		for range int(binary.BigEndian.Uint16(g[6:8])) {
			if len(g) < at+8 {
				break
			}
			aux, srcs := int(g[at+1]), int(binary.BigEndian.Uint16(g[at+2:at+4]))
			r.Groups = append(r.Groups, group(at+4))
			at += 8 + 4*srcs + 4*aux
		}
	default:
		return r, false // a query: the box's side sends none
	}
	return r, true
}
