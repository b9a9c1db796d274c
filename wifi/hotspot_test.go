package wifi

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/network"
)

func TestHotspotPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pw, err := HotspotPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != HotspotPasswordLength || len(pw) < 10 {
			t.Fatalf("%q: length %d", pw, len(pw))
		}
		if strings.Trim(pw, HotspotPasswordAlphabet) != "" {
			t.Fatalf("%q has characters outside the alphabet", pw)
		}
		if msg := PSKProblem(pw); msg != "" {
			t.Fatalf("%q is no WPA2 passphrase: %s", pw, msg)
		}
		seen[pw] = true
	}
	if len(seen) != 200 {
		t.Errorf("%d different passwords in 200", len(seen))
	}
	if strings.ContainsAny(HotspotPasswordAlphabet, "0oO1lIi") {
		t.Errorf("the alphabet holds characters a person misreads")
	}
}

func TestHotspotSSID(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:01:af")
	if got := HotspotSSID(mac); got != "boxagent-01af" {
		t.Errorf("HotspotSSID = %q", got)
	}
	if got := HotspotSSID(nil); got != "boxagent-setup" {
		t.Errorf("HotspotSSID(nil) = %q", got)
	}
}

func TestHotspotPool(t *testing.T) {
	for _, c := range []struct{ prefix, first, last string }{
		{"192.168.4.1/24", "192.168.4.10", "192.168.4.250"},
		{"10.0.0.1/28", "10.0.0.10", "10.0.0.14"},
		{"10.0.0.1/16", "10.0.0.10", "10.0.0.250"},
	} {
		first, last := poolOf(netip.MustParsePrefix(c.prefix))
		if first.String() != c.first || last.String() != c.last {
			t.Errorf("%s: pool %s-%s, want %s-%s", c.prefix, first, last, c.first, c.last)
		}
	}
}

func TestHotspotDNSAnswer(t *testing.T) {
	if dnsAnswer([]byte{1, 2, 3}, HotspotPrefix.Addr()) != nil {
		t.Error("a short message was answered")
	}
	// Two questions: a format error.
	q := []byte{0xab, 0xcd, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1}
	if r := dnsAnswer(q, HotspotPrefix.Addr()); len(r) != dnsHeader || r[3]&0xf != dnsRcodeFmt || r[0] != 0xab {
		t.Errorf("two questions: %x", r)
	}
}

// TestHostHotspotDNS resolves names through the real resolver of the Go
// standard library against the server on loopback (port 53: root).
func TestHostHotspotDNS(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root (port 53) and not -short")
	}
	d, err := StartHotspotDNS(netip.MustParseAddr("127.0.0.53"), nil)
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.53:53 here: %v", err)
	}
	defer d.Close()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", "127.0.0.53:53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com"} {
		ips, err := r.LookupIP(ctx, "ip4", name)
		if err != nil || len(ips) != 1 || !ips[0].Equal(net.ParseIP("127.0.0.53")) {
			t.Errorf("%s: %v, %v", name, ips, err)
		}
	}
	// No AAAA answer: the phone uses IPv4.
	if ips, err := r.LookupIP(ctx, "ip6", "captive.apple.com"); len(ips) != 0 {
		t.Errorf("AAAA: %v, %v", ips, err)
	}
}

// TestHostHotspotDHCP runs the hotspot's DHCP server in one network
// namespace and the uplinks' DHCP client (package network) in another,
// over a veth pair (real kernel, real sockets).
func TestHostHotspotDHCP(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: creates network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and a veth pair")
	}
	id := os.Getpid() % 100000
	ispNS, boxNS := guest.NewNetns(t, fmt.Sprintf("bxa-hs-isp-%d", id)), guest.NewNetns(t, fmt.Sprintf("bxa-hs-box-%d", id))
	ispIf, boxIf := fmt.Sprintf("hs%di", id), fmt.Sprintf("hs%db", id)
	guest.Veth(t, ispIf, ispNS, boxIf, boxNS)
	isp, box := nsHandle(t, ispNS.Name), nsHandle(t, boxNS.Name)
	h, err := netlink.NewHandleAt(box)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(boxIf)
	if err != nil {
		t.Fatal(err)
	}

	server := netip.MustParsePrefix("10.45.0.1/24")
	acked := make(chan netip.Addr, 4)
	s, err := StartHotspotDHCP(isp, HotspotDHCPConfig{Interface: ispIf, Server: server, Lease: 5 * time.Minute,
		OnLease: func(mac net.HardwareAddr, a netip.Addr) { acked <- a }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, err := network.OpenRawConn(box, link.Attrs().Index)
	if err != nil {
		t.Fatal(err)
	}
	bound := make(chan *network.Lease, 1)
	c := network.NewDHCPClient(h, rc, network.DHCPConfig{Link: boxIf, ClientIDMAC: true, Retransmit: time.Second,
		ResolvConf: filepath.Join(t.TempDir(), "resolv.conf")}, func(e network.Event) {
		if e.State == network.StateBound && e.Lease != nil {
			select {
			case bound <- e.Lease:
			default:
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	defer func() { cancel(); <-ran }()
	go func() { c.Run(ctx); close(ran) }()

	var lease *network.Lease
	select {
	case lease = <-bound:
	case <-time.After(15 * time.Second):
		t.Fatalf("not bound in 15s: %v", c.Status())
	}
	if lease.Address.String() != "10.45.0.10/24" || lease.Router != server.Addr() || lease.Duration != 5*time.Minute {
		t.Errorf("lease %+v", lease)
	}
	if got := s.Leases()[link.Attrs().HardwareAddr.String()]; got.String() != "10.45.0.10" {
		t.Errorf("server leases %v", s.Leases())
	}
	if a := <-acked; a.String() != "10.45.0.10" {
		t.Errorf("OnLease got %s", a)
	}
	if as, err := h.AddrList(link, netlink.FAMILY_V4); err != nil || len(as) != 1 || as[0].IPNet.String() != "10.45.0.10/24" {
		t.Errorf("box addresses %v %v", as, err)
	}
}

// nsHandle opens the namespace made as name (guest.NewNetns) until the
// test ends.
func nsHandle(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}
