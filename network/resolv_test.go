package network

import (
	"errors"
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

// TestResolvConfUplinksAndWiFi is the one file with every kind of source
// at once, as the agent has them: a wired lease, a static uplink with
// search domains, and the Wi-Fi link's lease at its metric, through
// carrier loss, duplicates and the Wi-Fi lease's end.
func TestResolvConfUplinksAndWiFi(t *testing.T) {
	wired := DNSSource{Link: "eth0.45", Method: MethodDHCP, Metric: 100, Servers: addrs("10.45.0.1"), Search: []string{"iptv.example"}}
	static := DNSSource{Link: "eth1", Method: MethodStatic, Metric: 0, Servers: addrs("192.0.2.53"), Search: []string{"office.example", "IPTV.example."}}
	// The Wi-Fi link's lease at its default metric (wifi.DefaultRouteMetric).
	wifi := DNSSource{Link: "wlan0", Method: "wifi dhcp", Metric: 600, Servers: addrs("10.78.0.1", "10.45.0.1"), Search: []string{"lab.example", "corp.example"}}
	type step struct {
		name string
		do   func(r *ResolvConf) error
		want string // the file after the step, less its first line
	}
	// The comment line of each source, as the file says it.
	const (
		cStatic = "# eth1 (static, metric 0): 192.0.2.53 search office.example IPTV.example.\n"
		cWired  = "# eth0.45 (dhcp, metric 100): 10.45.0.1 search iptv.example\n"
		cWiFi   = "# wlan0 (wifi dhcp, metric 600): 10.78.0.1 10.45.0.1 search lab.example corp.example\n"
		all     = cStatic + cWired + cWiFi + "search office.example IPTV.example lab.example corp.example\n" +
			"nameserver 192.0.2.53\nnameserver 10.45.0.1\nnameserver 10.78.0.1\n"
	)
	steps := []step{
		{"wifi alone", func(r *ResolvConf) error { return r.Set(wifi) },
			cWiFi + "search lab.example corp.example\nnameserver 10.78.0.1\nnameserver 10.45.0.1\n"},
		{"a wired lease comes first", func(r *ResolvConf) error { return r.Set(wired) },
			cWired + cWiFi + "search iptv.example lab.example corp.example\nnameserver 10.45.0.1\nnameserver 10.78.0.1\n"},
		{"static at metric 0 before both, duplicates once", func(r *ResolvConf) error { return r.Set(static) }, all},
		{"wired carrier down: its own server stays as Wi-Fi's", func(r *ResolvConf) error { return r.SetCarrier("eth0.45", false) },
			cStatic + cWiFi + "search office.example IPTV.example lab.example corp.example\nnameserver 192.0.2.53\nnameserver 10.78.0.1\nnameserver 10.45.0.1\n"},
		{"Wi-Fi disassociated", func(r *ResolvConf) error { return r.SetCarrier("wlan0", false) },
			cStatic + "search office.example IPTV.example\nnameserver 192.0.2.53\n"},
		{"both back", func(r *ResolvConf) error {
			return errors.Join(r.SetCarrier("wlan0", true), r.SetCarrier("eth0.45", true))
		}, all},
		{"the Wi-Fi lease ends", func(r *ResolvConf) error { return r.Drop("wlan0") },
			cStatic + cWired + "search office.example IPTV.example\nnameserver 192.0.2.53\nnameserver 10.45.0.1\n"},
	}
	path := filepath.Join(t.TempDir(), "resolv.conf")
	r := NewResolvConf(path)
	for _, s := range steps {
		must(t, s.do(r))
		b, err := os.ReadFile(path)
		must(t, err)
		_, got, _ := strings.Cut(string(b), "\n")
		if got != s.want {
			t.Errorf("%s:\n%s\nwant:\n%s", s.name, got, s.want)
		}
	}
}

// TestMergeDNSSearchLimits: the search line keeps to what every libc
// reads (6 domains, 256 characters), the lowest metrics' first.
func TestMergeDNSSearchLimits(t *testing.T) {
	var many []string
	for i := range 8 {
		many = append(many, fmt.Sprintf("d%d.example", i))
	}
	_, search := MergeDNS([]DNSSource{{Link: "wlan0", Metric: 600, Search: many}, {Link: "eth0", Metric: 100, Search: []string{"first.example"}}})
	if got := fmt.Sprint(search); got != "[first.example d0.example d1.example d2.example d3.example d4.example]" {
		t.Errorf("search %s", got)
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) // 191 characters
	_, search = MergeDNS([]DNSSource{{Link: "a", Search: []string{long, long[:127], "short.example"}}})
	line := "search " + strings.Join(search, " ")
	if len(search) != 2 || search[1] != "short.example" || len(line) > 256 {
		t.Errorf("search line of %d characters: %q", len(line), search)
	}
	for d, want := range map[string]bool{
		"lab.example": true, "lab.example.": true, "_sip.lab-1.example": true, "x": true,
		"": false, ".": false, "a..b": false, "a b": false, "a#b": false, "a;b": false, "a\x00b": false,
		strings.Repeat("a", 64): false, long + "." + long[:62]: false, long + "." + long[:61]: true,
	} {
		if got := validSearchDomain(d); got != want {
			t.Errorf("validSearchDomain(%q) = %v", d, got)
		}
	}
}

// TestStaticSearchConfig: a static uplink's search list is checked like
// every other field; other methods refuse it.
func TestStaticSearchConfig(t *testing.T) {
	u := Uplink{Parent: "eth1", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.10/24", DNS: []string{"192.0.2.53"}, Search: []string{"office.example", "bad domain", ""}}}
	got := fmt.Sprint(Config{Uplinks: []Uplink{u}}.Problems())
	if !strings.Contains(got, `uplink[0].ipv4.search[1] "bad domain" is not a domain name`) || !strings.Contains(got, `uplink[0].ipv4.search[2] "" is not a domain name`) || strings.Contains(got, "search[0]") {
		t.Errorf("problems %s", got)
	}
	u.IPv4 = IPv4{Method: MethodDHCP, Search: []string{"office.example"}}
	if got := fmt.Sprint(Config{Uplinks: []Uplink{u}}.Problems()); !strings.Contains(got, `uplink[0].ipv4.search only for method "static"`) {
		t.Errorf("problems %s", got)
	}
}
