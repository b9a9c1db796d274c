package network

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/clock/clocktest"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
)

// fakeClock is a Clock that moves only when the test says, and hears
// when the client handled a firing (DHCPClient.timerDone).
type fakeClock struct {
	*clocktest.Fake
	handled chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{Fake: clocktest.New(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)), handled: make(chan struct{}, 100)}
}

// fakeServer answers at the wire like a DHCP server with one address.
type fakeServer struct {
	mu     sync.Mutex
	silent bool // drop everything, like a dead server
	nak    bool // refuse REQUESTs
	lease  time.Duration
	got    []sentMsg // every message the client sent, as sent
}

type sentMsg struct {
	b   []byte
	dst netip.Addr
}

// kind names a client message: DISCOVER, REQUEST, RENEW (unicast with
// ciaddr) or REBIND (broadcast with ciaddr).
func (m sentMsg) kind() string {
	d, err := dhcpv4.FromBytes(m.b)
	if err != nil {
		return "garbage"
	}
	switch {
	case d.MessageType() != dhcpv4.MessageTypeRequest || d.ClientIPAddr.IsUnspecified():
		return d.MessageType().String()
	case m.dst == broadcast:
		return "REBIND"
	}
	return "RENEW"
}

var (
	srvIP    = net.IPv4(10, 45, 0, 1).To4()
	clientIP = net.IPv4(10, 45, 0, 50).To4()
)

func (s *fakeServer) answer(req *dhcpv4.DHCPv4, dst netip.Addr) []*dhcpv4.DHCPv4 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, sentMsg{req.ToBytes(), dst})
	if s.silent {
		return nil
	}
	t := dhcpv4.MessageTypeOffer
	if req.MessageType() == dhcpv4.MessageTypeRequest {
		t = dhcpv4.MessageTypeAck
		if s.nak {
			t = dhcpv4.MessageTypeNak
		}
	}
	reply, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(t),
		dhcpv4.WithServerIP(srvIP),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvIP)),
	)
	if err != nil {
		panic(err)
	}
	if t != dhcpv4.MessageTypeNak {
		reply.YourIPAddr = clientIP
		reply.UpdateOption(dhcpv4.OptIPAddressLeaseTime(s.lease))
		reply.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		reply.UpdateOption(dhcpv4.OptRouter(srvIP))
		reply.UpdateOption(dhcpv4.OptDNS(srvIP))
	}
	return []*dhcpv4.DHCPv4{reply}
}

func (s *fakeServer) set(f func(*fakeServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeServer) sent() []sentMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// wireConn is a Conn whose far end is a function answering each message.
type wireConn struct {
	answer func(*dhcpv4.DHCPv4, netip.Addr) []*dhcpv4.DHCPv4
	in     chan *dhcpv4.DHCPv4
	closed chan struct{}
	once   sync.Once
}

func newWireConn(answer func(*dhcpv4.DHCPv4, netip.Addr) []*dhcpv4.DHCPv4) *wireConn {
	return &wireConn{answer: answer, in: make(chan *dhcpv4.DHCPv4, 100), closed: make(chan struct{})}
}

func (w *wireConn) Send(m *dhcpv4.DHCPv4, dst netip.Addr) error {
	// Through bytes, as on a wire.
	req, err := dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		return err
	}
	for _, r := range w.answer(req, dst) {
		back, err := dhcpv4.FromBytes(r.ToBytes())
		if err != nil {
			return err
		}
		w.in <- back
	}
	return nil
}

func (w *wireConn) Receive() (*dhcpv4.DHCPv4, error) {
	select {
	case m := <-w.in:
		return m, nil
	case <-w.closed:
		return nil, net.ErrClosed
	}
}

func (w *wireConn) Close() error {
	w.once.Do(func() { close(w.closed) })
	return nil
}

// fakeKernel records what the client asks of netlink.
type fakeKernel struct {
	mu  sync.Mutex
	ops []string
}

var testMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x45, 0x01}

func (k *fakeKernel) LinkByName(name string) (netlink.Link, error) {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, Index: 7, HardwareAddr: testMAC}}, nil
}

func (k *fakeKernel) log(format string, args ...any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ops = append(k.ops, fmt.Sprintf(format, args...))
	return nil
}

func (k *fakeKernel) AddrReplace(_ netlink.Link, a *netlink.Addr) error {
	return k.log("addr replace %s valid %d preferred %d", a.IPNet, a.ValidLft, a.PreferedLft)
}

func (k *fakeKernel) AddrDel(_ netlink.Link, a *netlink.Addr) error {
	return k.log("addr del %s", a.IPNet)
}

func (k *fakeKernel) RouteReplace(r *netlink.Route) error {
	return k.log("route replace %s", routeText(r))
}
func (k *fakeKernel) RouteDel(r *netlink.Route) error { return k.log("route del %s", routeText(r)) }

func (k *fakeKernel) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	ops := k.ops
	k.ops = nil
	return ops
}

// harness runs a client on a fake clock, a fake wire and a fake kernel.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	server *fakeServer
	kernel *fakeKernel
	client *DHCPClient
	events chan Event
}

// startHarness starts a client against the fake server; setup, if any,
// changes the server before the client's first DISCOVER can reach it.
func startHarness(t *testing.T, cfg DHCPConfig, setup ...func(*fakeServer)) *harness {
	h := &harness{
		t: t, clock: newFakeClock(), server: &fakeServer{lease: time.Hour},
		kernel: &fakeKernel{}, events: make(chan Event, 100),
	}
	for _, f := range setup {
		f(h.server)
	}
	cfg.Clock = h.clock
	cfg.Link = "eth0.45"
	h.client = NewDHCPClient(h.kernel, newWireConn(h.server.answer), cfg, func(e Event) { h.events <- e })
	h.client.timerDone = func() { h.clock.handled <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// next is the next event; it fails the test after a (real) second.
func (h *harness) next() Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		return e
	case <-time.After(5 * time.Second):
		h.t.Fatalf("no event")
	}
	return Event{}
}

// want takes events until one in state s, failing on any other but the
// allowed ones.
func (h *harness) want(s State) Event {
	h.t.Helper()
	e := h.next()
	if e.State != s {
		h.t.Fatalf("event %v, want state %s", e, s)
	}
	return e
}

// advance fires timers, one at a time and each handled before the
// next, until the client reports an event.
func (h *harness) advance() Event {
	h.t.Helper()
	return h.clock.advanceTo(h.t, h.events)
}

// advanceTo fires timers, one at a time and each handled by the client
// (handled) before the next, until the client reports an event.
func (c *fakeClock) advanceTo(t testing.TB, events chan Event) Event {
	t.Helper()
	for {
		select {
		case e := <-events:
			return e
		default:
		}
		if !c.FireNext() {
			select {
			case e := <-events:
				return e
			case <-time.After(5 * time.Second):
				t.Fatalf("no timer pending and no event")
			}
		}
		select {
		case <-c.handled:
		case <-time.After(5 * time.Second):
			t.Fatalf("a timer's firing was not handled")
		}
	}
}

func TestDHCPStateMachine(t *testing.T) {
	h := startHarness(t, DHCPConfig{VendorClass: []byte("IPTV_TEST"), ClientIDMAC: true, RouteMetric: 100})
	t0 := h.clock.Now()
	h.want(StateSelecting)
	h.want(StateRequesting)
	e := h.want(StateBound)
	if e.Err != nil {
		t.Fatalf("bound with error: %v", e.Err)
	}
	l := e.Lease
	if l.Address != netip.MustParsePrefix("10.45.0.50/24") || l.Router != netip.MustParseAddr("10.45.0.1") ||
		l.Server != netip.MustParseAddr("10.45.0.1") || !slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("10.45.0.1")}) {
		t.Errorf("lease %+v", l)
	}
	if !l.Acquired.Equal(t0) || l.Duration != time.Hour || l.T1 != 30*time.Minute || l.T2 != 52*time.Minute+30*time.Second {
		t.Errorf("lease times %v %v %v %v", l.Acquired, l.Duration, l.T1, l.T2)
	}
	wantOps(t, h.kernel.take(),
		"addr replace 10.45.0.50/24 valid 3600 preferred 3600",
		"route replace 10.45.0.0/24 metric 100",
		"route replace 0.0.0.0/0 via 10.45.0.1 metric 100")

	// T1: renew with the server, which answers.
	e = h.advance()
	if e.State != StateRenewing || !h.clock.Now().Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("at %v: %v, want renewing at T1", h.clock.Now().Sub(t0), e)
	}
	e = h.want(StateBound)
	if !e.Lease.Acquired.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("renewed lease acquired at %v", e.Lease.Acquired)
	}
	wantOps(t, h.kernel.take(),
		"addr replace 10.45.0.50/24 valid 3600 preferred 3600",
		"route replace 10.45.0.0/24 metric 100",
		"route replace 0.0.0.0/0 via 10.45.0.1 metric 100")

	// The server dies: renewing, retries, rebinding, expiry.
	h.server.set(func(s *fakeServer) { s.silent = true })
	t1 := h.clock.Now()
	if e = h.advance(); e.State != StateRenewing {
		t.Fatalf("%v, want renewing", e)
	}
	if e = h.advance(); e.State != StateRebinding || !h.clock.Now().Equal(t1.Add(52*time.Minute+30*time.Second)) {
		t.Fatalf("at %v: %v, want rebinding at T2", h.clock.Now().Sub(t1), e)
	}
	if e = h.advance(); e.State != StateInit || !errors.Is(e.Err, ErrLeaseExpired) || e.Lease != nil || !h.clock.Now().Equal(t1.Add(time.Hour)) {
		t.Fatalf("at %v: %v, want init after expiry", h.clock.Now().Sub(t1), e)
	}
	wantOps(t, h.kernel.take(),
		"route del 10.45.0.0/24 metric 100",
		"route del 0.0.0.0/0 via 10.45.0.1 metric 100",
		"addr del 10.45.0.50/24")
	h.want(StateSelecting)

	// Each message of the dead time went out: count them by kind.
	var kinds []string
	for _, m := range h.server.sent() {
		kinds = append(kinds, m.kind())
	}
	if n, m := countOf(kinds, "RENEW"), countOf(kinds, "REBIND"); n < 3 || m < 2 {
		t.Errorf("%d renewals and %d rebinds sent, want retransmissions: %v", n, m, kinds)
	}

	// The server comes back: a new lease.
	h.server.set(func(s *fakeServer) { s.silent = false })
	h.client.Renew()
	h.want(StateSelecting)
	h.want(StateRequesting)
	h.want(StateBound)
}

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

func wantOps(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("netlink calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDHCPNoOffer(t *testing.T) {
	// Silent from the start: set after the client started, its first
	// DISCOVER could be answered (seen under qemu-aarch64).
	h := startHarness(t, DHCPConfig{VendorClass: []byte("WRONG"), Retransmit: time.Second, OfferTimeout: 5 * time.Second},
		func(s *fakeServer) { s.silent = true })
	t0 := h.clock.Now()
	h.want(StateSelecting)
	e := h.advance()
	if e.State != StateSelecting || !errors.Is(e.Err, ErrNoOffer) {
		t.Fatalf("%v, want selecting with ErrNoOffer", e)
	}
	if got := h.clock.Now().Sub(t0); got != 5*time.Second {
		t.Errorf("reported after %v, want 5s", got)
	}
	want := "no DHCP offer: the server ignored us; check vendor_class (3 DISCOVERs in 5s)"
	if e.Err.Error() != want {
		t.Errorf("error %q, want %q", e.Err, want)
	}
	// Backoff 1 s, 2 s, 4 s, …: DISCOVERs at 0, 1, 3, 7 s.
	if n := len(h.server.sent()); n != 3 {
		t.Errorf("%d DISCOVERs in 5 s, want 3", n)
	}
}

func TestDHCPNakStartsOver(t *testing.T) {
	h := startHarness(t, DHCPConfig{ClientIDMAC: true})
	h.want(StateSelecting)
	h.want(StateRequesting)
	h.want(StateBound)
	h.kernel.take()
	h.server.set(func(s *fakeServer) { s.nak = true })
	h.client.Renew()
	h.want(StateRenewing)
	if e := h.want(StateInit); !errors.Is(e.Err, ErrNAK) || e.Lease != nil {
		t.Fatalf("%v, want init with ErrNAK", e)
	}
	wantOps(t, h.kernel.take(),
		"route del 10.45.0.0/24 metric 0",
		"route del 0.0.0.0/0 via 10.45.0.1 metric 0",
		"addr del 10.45.0.50/24")
	h.server.set(func(s *fakeServer) { s.nak = false })
	if e := h.advance(); e.State != StateSelecting {
		t.Fatalf("%v, want selecting again", e)
	}
	h.want(StateRequesting)
	h.want(StateBound)
}

// TestDHCPOptionsSameBytes checks that options 60, 61, 125 and the other
// fixed ones are the same bytes in DISCOVER, REQUEST, RENEW and REBIND.
func TestDHCPOptionsSameBytes(t *testing.T) {
	u := Uplink{Name: "iptv", Parent: "eth0", IPv4: IPv4{
		Method: MethodDHCP, VendorClass: "IPTV_TEST", ClientID: "hex:01020304",
		Options: map[string]string{"125": "hex:00000de9:04:01:02:03:04", "77": "box"},
	}}
	cfg, err := DHCPConfigFor(u, "")
	if err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, cfg)
	h.want(StateSelecting)
	h.want(StateRequesting)
	h.want(StateBound)
	if e := h.advance(); e.State != StateRenewing {
		t.Fatalf("%v, want renewing", e)
	}
	h.want(StateBound)
	h.server.set(func(s *fakeServer) { s.silent = true })
	for e := h.advance(); e.State != StateRebinding; e = h.advance() {
	}

	want := map[byte]string{
		60:  "3c09" + hex.EncodeToString([]byte("IPTV_TEST")),
		61:  "3d0401020304",
		77:  "4d03" + hex.EncodeToString([]byte("box")),
		125: "7d0900000de90401020304",
		55:  "370e0103060f1a1c2a33363a3b7779f9",
		57:  "390205dc",
	}
	seen := map[string]bool{}
	for _, m := range h.server.sent() {
		kind := m.kind()
		seen[kind] = true
		tlvs := rawOptions(t, m.b)
		for code, w := range want {
			if got := hex.EncodeToString(tlvs[code]); got != w {
				t.Errorf("%s option %d on the wire: %s, want %s", kind, code, got, w)
			}
		}
	}
	for _, k := range []string{"DISCOVER", "REQUEST", "RENEW", "REBIND"} {
		if !seen[k] {
			t.Errorf("no %s sent", k)
		}
	}
}

// rawOptions splits a message's options as they are on the wire, each
// with its code and length bytes.
func rawOptions(t *testing.T, b []byte) map[byte][]byte {
	t.Helper()
	const start = 240 // fixed header and magic cookie
	if len(b) < start || !bytes.Equal(b[236:240], []byte{99, 130, 83, 99}) {
		t.Fatalf("not a DHCP message: % x", b)
	}
	opts := map[byte][]byte{}
	for i := start; i < len(b); {
		code := b[i]
		if code == 0 {
			i++
			continue
		}
		if code == 255 {
			break
		}
		n := int(b[i+1])
		if _, dup := opts[code]; dup {
			t.Errorf("option %d twice", code)
		}
		opts[code] = b[i : i+2+n]
		i += 2 + n
	}
	return opts
}

func TestUDP4RoundTrip(t *testing.T) {
	payload := []byte("hello, dhcp")
	src, dst := netip.MustParseAddr("10.45.0.50"), netip.MustParseAddr("10.45.0.1")
	pkt := udp4(payload, src, dst, 68, 68)
	if sum16(pkt[:20], 0) != 0xffff {
		t.Errorf("IP header checksum does not verify")
	}
	gotSrc, got, ok := parseUDP4(pkt, 68)
	if !ok || gotSrc != src || !bytes.Equal(got, payload) {
		t.Errorf("parseUDP4 = %v %q %v", gotSrc, got, ok)
	}
	if _, _, ok := parseUDP4(pkt, 67); ok {
		t.Errorf("parseUDP4 took a packet to another port")
	}
	if _, _, ok := parseUDP4(pkt[:25], 68); ok {
		t.Errorf("parseUDP4 took a truncated packet")
	}
}

func TestEventJSON(t *testing.T) {
	l := &Lease{Address: netip.MustParsePrefix("10.45.0.50/24"), Server: netip.MustParseAddr("10.45.0.1"), Duration: time.Minute}
	e := Event{Link: "iptv", State: StateBound, Lease: l, Err: errors.New("cannot set route"), Time: time.Unix(0, 0).UTC()}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"link":"iptv"`, `"state":"bound"`, `"address":"10.45.0.50/24"`, `"error":"cannot set route"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

// rfc3397Example is the example of RFC 3397 section 4: "eng.apple.com."
// and "marketing.apple.com.", the second ending in a pointer to offset
// 4 ("apple.com."), as it crosses the wire in one option 119.
var rfc3397Example = []byte{
	3, 'e', 'n', 'g', 5, 'a', 'p', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
	9, 'm', 'a', 'r', 'k', 'e', 't', 'i', 'n', 'g', 0xc0, 0x04,
}

func ackWith(t *testing.T, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.IPv4(10, 45, 0, 50)),
		dhcpv4.WithServerIP(net.IPv4(10, 45, 0, 1)), dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		m.UpdateOption(o)
	}
	return m
}

// TestDomainSearchOption reads option 119 (RFC 3397) off the wire, byte
// for byte: the RFC's own example with its compression pointer, the
// option split in two (RFC 3396 concatenation), and malformed lists,
// which give no search domains at all (and no panic).
func TestDomainSearchOption(t *testing.T) {
	opt := func(b []byte) dhcpv4.Option {
		return dhcpv4.Option{Code: dhcpv4.OptionDNSDomainSearchList, Value: dhcpv4.OptionGeneric{Data: b}}
	}
	ok := []struct {
		name string
		raw  []byte
		want string
	}{
		{"RFC 3397 example", rfc3397Example, "[eng.apple.com marketing.apple.com]"},
		{"no compression", []byte{3, 'l', 'a', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}, "[lab.example]"},
		{"pointer to a whole earlier name", append(slices.Clone(rfc3397Example), 0xc0, 0x00), "[eng.apple.com marketing.apple.com eng.apple.com]"},
		{"a name resolv.conf cannot carry is left out", []byte{3, 'a', ' ', 'b', 0, 1, 'x', 0}, "[x]"},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			// Through the wire: the ACK's bytes parsed as the client does.
			m, err := dhcpv4.FromBytes(ackWith(t, opt(c.raw)).ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(domainSearch(m)); got != c.want {
				t.Errorf("search %s, want %s", got, c.want)
			}
		})
	}

	// RFC 3396: a long option arrives as several instances of 119, which
	// the receiver concatenates. Build the wire bytes by hand: the
	// library would merge them on the way out.
	b := ackWith(t).ToBytes()
	end := bytes.LastIndexByte(b, 255)
	split := append([]byte{119, 10}, rfc3397Example[:10]...)
	split = append(split, 119, byte(len(rfc3397Example)-10))
	split = append(split, rfc3397Example[10:]...)
	b = append(append(slices.Clone(b[:end]), split...), 255)
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := leaseFrom(m, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(l.Search); got != "[eng.apple.com marketing.apple.com]" {
		t.Errorf("split option 119: search %s", got)
	}

	bad := []struct {
		name string
		raw  []byte
	}{
		{"pointer to itself", []byte{0xc0, 0x00}},
		{"pointer loop", []byte{3, 'f', 'o', 'o', 0xc0, 0x06, 0xc0, 0x00}},
		{"pointer forward", []byte{0xc0, 0x02, 3, 'f', 'o', 'o', 0}},
		{"pointer out of range", []byte{3, 'f', 'o', 'o', 0xc0, 0xff}},
		{"pointer into a label", append(slices.Clone(rfc3397Example), 0xc0, 0x01)},
		{"pointer cut short", []byte{3, 'f', 'o', 'o', 0, 0xc0}},
		{"label past the end", []byte{9, 'f', 'o', 'o', 0}},
		{"name without its end", []byte{3, 'f', 'o', 'o'}},
		{"reserved label type", []byte{0x41, 'f', 0}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			m, err := dhcpv4.FromBytes(ackWith(t, opt(c.raw), dhcpv4.OptDomainName("corp.example")).ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			l, err := leaseFrom(m, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if l.Search != nil {
				t.Errorf("search %q from malformed option 119 % x", l.Search, c.raw)
			}
			// Option 15 still stands.
			if got := fmt.Sprint(l.SearchDomains()); got != "[corp.example]" {
				t.Errorf("search line %s, want [corp.example]", got)
			}
		})
	}
}

func TestLeaseSearchDomains(t *testing.T) {
	for _, c := range []struct {
		l    Lease
		want string
	}{
		{Lease{}, "[]"},
		{Lease{Domain: "corp.example"}, "[corp.example]"},
		{Lease{Domain: "corp.example", Search: []string{"lab.example", "corp.example"}}, "[lab.example corp.example]"},
	} {
		if got := fmt.Sprint(c.l.SearchDomains()); got != c.want {
			t.Errorf("%+v: %s, want %s", c.l, got, c.want)
		}
	}
}
