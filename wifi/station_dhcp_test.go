package wifi

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/network"
)

// stationFakeAP answers the station's DHCP client at the wire: an OFFER
// to a DISCOVER, an ACK with DNS server 10.78.0.1, domain-search
// lab.example (option 119) and domain home.example to a REQUEST.
type stationFakeAP struct {
	replies chan *dhcpv4.DHCPv4
	closed  chan struct{}
	once    sync.Once
}

func (f *stationFakeAP) Send(m *dhcpv4.DHCPv4, _ netip.Addr) error {
	t := dhcpv4.MessageTypeOffer
	if m.MessageType() == dhcpv4.MessageTypeRequest {
		t = dhcpv4.MessageTypeAck
	}
	r, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(t), dhcpv4.WithYourIP(net.IPv4(10, 78, 0, 100)),
		dhcpv4.WithServerIP(net.IPv4(10, 78, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 78, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 78, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 78, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptDomainName("home.example")),
		dhcpv4.WithOption(dhcpv4.Option{Code: dhcpv4.OptionDNSDomainSearchList,
			Value: dhcpv4.OptionGeneric{Data: []byte{3, 'l', 'a', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}}}))
	if err != nil {
		return err
	}
	select {
	case f.replies <- r:
	case <-f.closed:
	}
	return nil
}

func (f *stationFakeAP) Receive() (*dhcpv4.DHCPv4, error) {
	select {
	case r := <-f.replies:
		return r, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *stationFakeAP) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

// stationFakeKernel takes the lease's address and routes and keeps
// nothing.
type stationFakeKernel struct{}

func (stationFakeKernel) LinkByName(name string) (netlink.Link, error) {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, Index: 42, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0x78, 1}}}, nil
}
func (stationFakeKernel) AddrReplace(netlink.Link, *netlink.Addr) error { return nil }
func (stationFakeKernel) AddrDel(netlink.Link, *netlink.Addr) error     { return nil }
func (stationFakeKernel) RouteReplace(*netlink.Route) error             { return nil }
func (stationFakeKernel) RouteDel(*netlink.Route) error                 { return nil }

// TestStationDHCPLeaseInResolvConf runs the station's DHCP client
// against an access point faked at the wire, with the resolv.conf the
// agent shares with its wired uplinks (one of them already in it): the
// lease's server and search domain join the file after the wired ones,
// leave it while the station is disassociated, come back, and go when
// the network is forgotten; net show's row follows.
func TestStationDHCPLeaseInResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	dns := network.NewResolvConf(path)
	if err := dns.Set(network.DNSSource{Link: "eth0", Method: network.MethodDHCP, Metric: 100, Servers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Search: []string{"isp.example"}}); err != nil {
		t.Fatal(err)
	}
	events := make(chan network.Event, 64)
	s := NewStationDHCP(StationDHCPOptions{Link: "wltest0", DNS: dns, OnEvent: func(ev network.Event) {
		select {
		case events <- ev:
		default:
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.clientMu.Lock()
	s.runLocked(ctx, stationFakeKernel{}, &stationFakeAP{replies: make(chan *dhcpv4.DHCPv4, 4), closed: make(chan struct{})}, "home", func() {})
	s.clientMu.Unlock()
	defer s.Drop()
	for bound := false; !bound; {
		select {
		case ev := <-events:
			bound = ev.State == network.StateBound
		case <-time.After(10 * time.Second):
			t.Fatal("no lease from the fake access point")
		}
	}
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "\n")
		return rest
	}
	both := `# eth0 (dhcp, metric 100): 192.0.2.53 search isp.example
# wltest0 (wifi dhcp, metric 600): 10.78.0.1 search lab.example
search isp.example lab.example
nameserver 192.0.2.53
nameserver 10.78.0.1
`
	wired := `# eth0 (dhcp, metric 100): 192.0.2.53 search isp.example
search isp.example
nameserver 192.0.2.53
`
	if got := read(); got != both {
		t.Errorf("after the lease:\n%s\nwant:\n%s", got, both)
	}
	if l := s.client.Status().Lease; l == nil || strings.Join(l.Search, ",") != "lab.example" || l.Domain != "home.example" {
		t.Errorf("lease %+v", l)
	}
	// net show's row: the lease, up once the station is associated.
	if u := s.Uplink(false); u.Up || u.Name != "wltest0" || u.SSID != "home" || u.DHCP == nil || u.DHCP.Lease == nil || !strings.HasPrefix(u.Detail, "not associated") {
		t.Errorf("uplink before association: %+v", u)
	}
	s.mu.Lock()
	s.associated = true // what a completed state does, without its renewal
	s.mu.Unlock()
	if u := s.Uplink(false); !u.Up || !u.Carrier || u.Detail != "" || u.Method != "dhcp" || u.DHCP.State != network.StateBound || !strings.HasPrefix(u.DHCP.Lease.Address.String(), "10.78.0.100/") {
		t.Errorf("uplink associated: %+v", u)
	}
	if u := s.Uplink(true); u.Up || u.Detail != "the setup hotspot runs on it" {
		t.Errorf("uplink under the hotspot: %+v", u)
	}
	for _, c := range []struct {
		state string
		want  string
	}{
		{StateDisconnected, wired},
		{"associating", wired}, // between: the servers stay where they are
		{StateCompleted, both},
		{"4way_handshake", both}, // a rekey keeps them
		{StateInactive, wired},
		{StateCompleted, both},
	} {
		s.State(c.state)
		if got := read(); got != c.want {
			t.Errorf("after %s:\n%s\nwant:\n%s", c.state, got, c.want)
		}
	}
	s.Forgotten("elsewhere")
	if got := read(); got != both {
		t.Errorf("another network forgotten:\n%s", got)
	}
	s.Forgotten("home")
	if got := read(); got != wired {
		t.Errorf("network forgotten:\n%s\nwant:\n%s", got, wired)
	}
	if got := s.Address(); got != "" {
		t.Errorf("a lease after forget: %s", got)
	}
	if u := s.Uplink(false); u.Up || u.DHCP != nil || u.SSID != "" || u.Detail != "no DHCP client yet" {
		t.Errorf("uplink after forget: %+v", u)
	}
}
