package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolvConfIPv6Side: a link's IPv6 servers are an entry of their own
// beside its IPv4 ones: each is dropped alone, and the carrier hides both.
func TestResolvConfIPv6Side(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	r := NewResolvConf(path)
	read := func() string {
		b, err := os.ReadFile(path)
		must(t, err)
		return string(b)
	}
	must(t, r.Set(DNSSource{Link: "eth0", Method: "dhcp", Servers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}))
	must(t, r.Set(DNSSource{Link: "eth0", Method: "ipv6", IPv6: true, Servers: []netip.Addr{netip.MustParseAddr("2001:db8::53")}}))
	want := "# written by boxagent: DNS servers of the uplinks, lowest route metric first\n" +
		"# eth0 (dhcp, metric 0): 192.0.2.1\n# eth0 (ipv6, metric 0): 2001:db8::53\n" +
		"nameserver 192.0.2.1\nnameserver 2001:db8::53\n"
	if got := read(); got != want {
		t.Errorf("both sides:\n%s\nwant\n%s", got, want)
	}
	must(t, r.SetCarrier("eth0", false))
	if got := read(); strings.Contains(got, "nameserver") {
		t.Errorf("no carrier, servers left:\n%s", got)
	}
	must(t, r.SetCarrier("eth0", true))
	must(t, r.Drop("eth0"))
	if got := read(); strings.Contains(got, "192.0.2.1") || !strings.Contains(got, "nameserver 2001:db8::53\n") {
		t.Errorf("IPv4 side dropped:\n%s", got)
	}
	must(t, r.Set(DNSSource{Link: "eth0", Method: "dhcp", Servers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}))
	must(t, r.DropIPv6("eth0"))
	if got := read(); strings.Contains(got, "2001:db8::53") || !strings.Contains(got, "nameserver 192.0.2.1\n") {
		t.Errorf("IPv6 side dropped:\n%s", got)
	}
}
