package network

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestMergeDNS(t *testing.T) {
	iptv := DNSSource{Link: "eth0.45", Method: MethodDHCP, Metric: 100, Servers: addrs("10.45.0.1"), Search: []string{"iptv.example"}}
	inet := DNSSource{Link: "ppp0wan", Method: MethodPPPoE, Metric: 50, Servers: addrs("192.0.2.53", "192.0.2.54")}
	static := DNSSource{Link: "eth1", Method: MethodStatic, Metric: 300, Servers: addrs("10.45.0.1", "9.9.9.9"), Search: []string{"Home.Example.", "iptv.example"}}
	for _, c := range []struct {
		name    string
		sources []DNSSource
		servers string
		search  string
	}{
		{"none", nil, "[]", "[]"},
		{"one", []DNSSource{iptv}, "[10.45.0.1]", "[iptv.example]"},
		{"lowest metric first", []DNSSource{iptv, inet}, "[192.0.2.53 192.0.2.54 10.45.0.1]", "[iptv.example]"},
		{"duplicates keep the first place", []DNSSource{static, iptv, inet}, "[192.0.2.53 192.0.2.54 10.45.0.1 9.9.9.9]", "[iptv.example Home.Example]"},
		{"equal metrics go by link name", []DNSSource{
			{Link: "b", Metric: 10, Servers: addrs("192.0.2.2")},
			{Link: "a", Metric: 10, Servers: addrs("192.0.2.1")},
		}, "[192.0.2.1 192.0.2.2]", "[]"},
		{"unusable entries left out", []DNSSource{
			{Link: "a", Servers: []netip.Addr{{}, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::ffff:192.0.2.1")}, Search: []string{"", "a b", "x;y", "."}},
		}, "[192.0.2.1]", "[]"},
		{"IPv6 servers", []DNSSource{{Link: "a", Servers: addrs("2001:db8::53", "192.0.2.1")}}, "[2001:db8::53 192.0.2.1]", "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			servers, search := MergeDNS(c.sources)
			if got := fmt.Sprint(servers); got != c.servers {
				t.Errorf("servers %s, want %s", got, c.servers)
			}
			if got := fmt.Sprint(search); got != c.search {
				t.Errorf("search %s, want %s", got, c.search)
			}
		})
	}
}

func TestRenderResolvConf(t *testing.T) {
	got := string(RenderResolvConf([]DNSSource{
		{Link: "eth0.45", Method: MethodDHCP, Metric: 100, Servers: addrs("10.45.0.1"), Search: []string{"iptv.example"}},
		{Link: "wan", Method: MethodPPPoE, Metric: 50, Servers: addrs("192.0.2.53", "10.45.0.1")},
	}))
	want := `# written by boxagent: DNS servers of the uplinks, lowest route metric first
# wan (pppoe, metric 50): 192.0.2.53 10.45.0.1
# eth0.45 (dhcp, metric 100): 10.45.0.1 search iptv.example
search iptv.example
nameserver 192.0.2.53
nameserver 10.45.0.1
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestResolvConfFile: sources come and go, the carrier hides and brings
// back servers, and the file is written only when its content changes.
func TestResolvConfFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "resolv.conf")
	r := NewResolvConf(path)
	// Nothing to say: no file.
	must(t, r.Sync())
	must(t, r.Drop("eth0.45"))
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a file without sources: %v", err)
	}
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	nameservers := func() string {
		var ns []string
		for _, l := range strings.Split(read(), "\n") {
			if s, ok := strings.CutPrefix(l, "nameserver "); ok {
				ns = append(ns, s)
			}
		}
		return strings.Join(ns, " ")
	}
	must(t, r.Set(DNSSource{Link: "eth0.45", Method: MethodDHCP, Metric: 100, Servers: addrs("10.45.0.1")}))
	must(t, r.Set(DNSSource{Link: "eth1", Method: MethodStatic, Metric: 10, Servers: addrs("192.0.2.53")}))
	if got := nameservers(); got != "192.0.2.53 10.45.0.1" {
		t.Errorf("nameservers %q", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v %v", fi, err)
	}

	// The same again does not touch the file: its mtime stays.
	old := time.Unix(1_000_000, 0)
	must(t, os.Chtimes(path, old, old))
	must(t, r.Set(DNSSource{Link: "eth0.45", Method: MethodDHCP, Metric: 100, Servers: addrs("10.45.0.1")}))
	must(t, r.SetCarrier("eth0.45", true))
	must(t, r.Drop("nope0"))
	must(t, r.Sync())
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
		t.Errorf("rewritten without a change: mtime %v", fi.ModTime())
	}
	// Nor does a fresh one finding the same content (an agent restart).
	other := filepath.Join(filepath.Dir(path), "other.conf")
	one := DNSSource{Link: "eth0.45", Method: MethodDHCP, Metric: 100, Servers: addrs("10.45.0.1")}
	must(t, NewResolvConf(other).Set(one))
	must(t, os.Chtimes(other, old, old))
	must(t, NewResolvConf(other).Set(one))
	if fi, _ := os.Stat(other); !fi.ModTime().Equal(old) {
		t.Errorf("a restart rewrote the same content: mtime %v", fi.ModTime())
	}
	must(t, os.Remove(other))

	// Carrier loss hides the servers; its return brings them back.
	must(t, r.SetCarrier("eth1", false))
	if got := nameservers(); got != "10.45.0.1" {
		t.Errorf("nameservers without eth1's carrier %q", got)
	}
	must(t, r.SetCarrier("eth1", true))
	if got := nameservers(); got != "192.0.2.53 10.45.0.1" {
		t.Errorf("nameservers after eth1's carrier returned %q", got)
	}
	// A source without servers is gone; dropping the last leaves none.
	must(t, r.Set(DNSSource{Link: "eth1", Method: MethodStatic, Metric: 10}))
	must(t, r.Drop("eth0.45"))
	if got := read(); strings.Contains(got, "nameserver") || strings.Contains(got, "eth1") {
		t.Errorf("after every source left:\n%s", got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	// nil writes nothing.
	var none *ResolvConf
	must(t, none.Set(DNSSource{Link: "x", Servers: addrs("192.0.2.1")}))
}
