package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/testbus"
	"github.com/boxagent/boxagent/wifi"

	"github.com/godbus/dbus/v5"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/network"
)

func TestWiFiConfigSection(t *testing.T) {
	doc := `[wifi]
interface = "wlan0"
[[wifi.network]]
ssid = "home"
psk = "correct horse"
priority = 10
[[wifi.network]]
ssid = "cafe"
psk = "short"
`
	_, err := config.Parse("config.toml", []byte(doc))
	if err == nil || err.Error() != `config.toml:9: wifi.network[1].psk: 5 characters is too short: a passphrase has 8 to 63` {
		t.Fatalf("Parse = %v", err)
	}
	cfg, err := config.Parse("config.toml", []byte(strings.Replace(doc, `"short"`, `"long enough"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w := wifiConfig(cfg); w.Interface != "wlan0" || len(w.Networks) != 2 || w.Networks[0].Priority != 10 {
		t.Errorf("wifi = %+v", w)
	}
	snap := string(cfg.Snapshot())
	if strings.Contains(snap, "correct horse") || !strings.Contains(snap, config.Fingerprint("correct horse")) {
		t.Errorf("the snapshot does not fingerprint the PSK: %s", snap)
	}
	if wifiConfig(config.Default()).Networks != nil {
		t.Error("the default config has Wi-Fi networks")
	}
}

func TestMapWiFiError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{wifi.Network{SSID: "x", PSK: "1"}.Validate(), http.StatusBadRequest, "wifi.invalid"},
		{&wifi.Error{Op: "join", Err: wifi.ErrWrongPassword}, http.StatusUnauthorized, "wifi.wrong_password"},
		{&wifi.Error{Op: "join", Err: wifi.ErrNotFound}, http.StatusNotFound, "wifi.not_found"},
		{&wifi.Error{Op: "join", Err: wifi.ErrRejected}, http.StatusBadGateway, "wifi.rejected"},
		{&wifi.Error{Op: "open", Err: wifi.ErrNoSupplicant}, http.StatusServiceUnavailable, "wifi.absent"},
	} {
		e := mapWiFiError(c.err)
		if e == nil || e.Status != c.status || e.Code != c.code {
			t.Errorf("mapWiFiError(%v) = %+v, want %d %s", c.err, e, c.status, c.code)
		}
	}
	if e := mapWiFiError(wifi.Network{SSID: "x", PSK: "1"}.Validate()); !strings.HasPrefix(e.Message, "psk: ") {
		t.Errorf("the message does not name the field: %q", e.Message)
	}
	if mapWiFiError(errors.New("other")) != nil {
		t.Error("mapWiFiError claims a foreign error")
	}
}

// wifiTestBus runs a private dbus-daemon (the real one, the test's config)
// and returns a connection to it.
func wifiTestBus(t *testing.T) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(testbus.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestCheckWiFi(t *testing.T) {
	conn := wifiTestBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host := t.TempDir()
	p := paths.Paths{HostRoot: host}
	write := func(rel, body string) {
		t.Helper()
		full := filepath.Join(host, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(host, "proc"), 0o755)
	want := func(name, result, detail string) {
		t.Helper()
		c := checkWiFi(ctx, conn, p, "")
		if c.Result != result || !strings.Contains(c.Detail, detail) {
			t.Errorf("%s: check = %+v, want %s …%s…", name, c, result, detail)
		}
		if result != apitype.CheckOK && result != apitype.CheckSkip && c.Fix == "" {
			t.Errorf("%s: no fix: %+v", name, c)
		}
	}
	want("no radio", apitype.CheckSkip, "no wireless interface")
	os.MkdirAll(filepath.Join(host, "sys/class/net/wlan0/wireless"), 0o755)
	want("not installed", apitype.CheckFail, "not installed")
	write("usr/sbin/wpa_supplicant", "")
	want("not running", apitype.CheckFail, "not on the system bus")
	write("proc/4242/comm", "wpa_supplicant\n")
	write("proc/4242/cmdline", "/sbin/wpa_supplicant\x00-i\x00wlan0\x00-c\x00/etc/wpa.conf\x00")
	want("without -u", apitype.CheckFail, "without -u")
	if reply, err := conn.RequestName(wifi.SupplicantName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own %s: %v %v", wifi.SupplicantName, reply, err)
	}
	want("on the bus", apitype.CheckOK, "wpa_supplicant answers")
	if reply, err := conn.RequestName("net.connman.iwd", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own net.connman.iwd: %v %v", reply, err)
	}
	want("iwd", apitype.CheckWarn, "iwd is running")
	if c := checkWiFi(ctx, conn, p, "wlan7"); c.Result != apitype.CheckWarn || c.Fix == "" {
		t.Errorf("configured interface missing: %+v", c)
	}
}

func TestWiFiRouteMetricConfig(t *testing.T) {
	for _, c := range []struct {
		doc, err string
		metric   uint32
	}{
		{"[wifi]\ninterface = \"wlan0\"\n", "", wifi.DefaultRouteMetric},
		{"[wifi]\nroute_metric = 50\n", "", 50},
		{"[wifi]\nroute_metric = 0\n", "", 0},
		{"[wifi]\ninterface = \"wlan0\"\nroute_metric = -1\n", "config.toml:3: wifi.route_metric: -1 is out of range 0..4294967295", 0},
		{"[wifi]\nroute_metric = 4294967296\n", "config.toml:2: wifi.route_metric: 4294967296 is out of range 0..4294967295", 0},
		{"[wifi]\nroute_metric = \"high\"\n", "config.toml:2: wifi.route_metric: ", 0},
	} {
		cfg, err := config.Parse("config.toml", []byte(c.doc))
		switch {
		case c.err != "":
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %s", c.doc, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.doc, err)
		case wifiConfig(cfg).Metric() != c.metric:
			t.Errorf("%q: metric %d, want %d", c.doc, wifiConfig(cfg).Metric(), c.metric)
		}
	}
	if m := wifiConfig(config.Default()).Metric(); m != 600 {
		t.Errorf("default metric %d", m)
	}
}

// wifiFakeAP answers the Wi-Fi DHCP client at the wire: an OFFER to a
// DISCOVER, an ACK with DNS server 10.78.0.1, domain-search lab.example
// (option 119) and domain home.example to a REQUEST.
type wifiFakeAP struct {
	replies chan *dhcpv4.DHCPv4
	closed  chan struct{}
	once    sync.Once
}

func (f *wifiFakeAP) Send(m *dhcpv4.DHCPv4, _ netip.Addr) error {
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

func (f *wifiFakeAP) Receive() (*dhcpv4.DHCPv4, error) {
	select {
	case r := <-f.replies:
		return r, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

func (f *wifiFakeAP) Close() error { f.once.Do(func() { close(f.closed) }); return nil }

// wifiFakeKernel takes the lease's address and routes and keeps nothing.
type wifiFakeKernel struct{}

func (wifiFakeKernel) LinkByName(name string) (netlink.Link, error) {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, Index: 42, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0x78, 1}}}, nil
}
func (wifiFakeKernel) AddrReplace(netlink.Link, *netlink.Addr) error { return nil }
func (wifiFakeKernel) AddrDel(netlink.Link, *netlink.Addr) error     { return nil }
func (wifiFakeKernel) RouteReplace(*netlink.Route) error             { return nil }
func (wifiFakeKernel) RouteDel(*netlink.Route) error                 { return nil }

// TestWiFiLeaseInResolvConf runs the Wi-Fi domain's DHCP client against
// an access point faked at the wire, with the resolv.conf the agent
// shares with its wired uplinks (one of them already in it): the lease's
// server and search domain join the file after the wired ones, leave it
// while the station is disassociated, come back, and go when the
// network is forgotten.
func TestWiFiLeaseInResolvConf(t *testing.T) {
	d := setupTestDomain(t)
	path := filepath.Join(t.TempDir(), "resolv.conf")
	d.dns = network.NewResolvConf(path)
	d.iface = "wltest0"
	if err := d.dns.Set(network.DNSSource{Link: "eth0", Method: network.MethodDHCP, Metric: 100, Servers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, Search: []string{"isp.example"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, _, stopEvents := d.a.events.Subscribe(0, false)
	defer stopEvents()
	d.dhcpMu.Lock()
	d.runClientLocked(ctx, wifiFakeKernel{}, &wifiFakeAP{replies: make(chan *dhcpv4.DHCPv4, 4), closed: make(chan struct{})}, d.iface, "home", func() {})
	d.dhcpMu.Unlock()
	defer d.dropLease()
	for bound := false; !bound; {
		select {
		case ev := <-evs:
			bound = ev.Type == "wifi.dhcp" && strings.Contains(string(ev.Data), `"state":"bound"`)
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
	if l := d.dhcp.Status().Lease; l == nil || strings.Join(l.Search, ",") != "lab.example" || l.Domain != "home.example" {
		t.Errorf("lease %+v", l)
	}
	// net show's row: the lease, up once the station is associated.
	if u := d.uplink(); u == nil || u.Up || u.Name != "wltest0" || u.SSID != "home" || u.DHCP == nil || u.DHCP.Lease == nil || !strings.HasPrefix(u.Detail, "not associated") {
		t.Errorf("uplink before association: %+v", u)
	}
	d.mu.Lock()
	d.associated = true // what a completed state does, without its renewal
	d.mu.Unlock()
	if u := d.uplink(); u == nil || !u.Up || !u.Carrier || u.Detail != "" || u.Method != "dhcp" || u.DHCP.State != network.StateBound || !strings.HasPrefix(u.DHCP.Lease.Address.String(), "10.78.0.100/") {
		t.Errorf("uplink associated: %+v", u)
	}
	d.onEvent(ctx, wifi.Event{Kind: "state", State: wifi.StateDisconnected})
	if got := read(); got != wired {
		t.Errorf("disassociated:\n%s\nwant:\n%s", got, wired)
	}
	d.dns.SetCarrier(d.iface, true) // what a completed state does, without its renewal
	if got := read(); got != both {
		t.Errorf("associated again:\n%s\nwant:\n%s", got, both)
	}
	d.forgotten("elsewhere")
	if got := read(); got != both {
		t.Errorf("another network forgotten:\n%s", got)
	}
	d.forgotten("home")
	if got := read(); got != wired {
		t.Errorf("network forgotten:\n%s\nwant:\n%s", got, wired)
	}
	if got := d.leaseAddress(); got != "" {
		t.Errorf("a lease after forget: %s", got)
	}
	d.mu.Lock()
	d.associated = true
	d.mu.Unlock()
	if u := d.uplink(); u == nil || u.Up || u.DHCP != nil || u.SSID != "" || u.Detail != "no DHCP client yet" {
		t.Errorf("uplink after forget: %+v", u)
	}
	d.iface = ""
	if u := d.uplink(); u != nil {
		t.Errorf("uplink without a Wi-Fi interface: %+v", u)
	}
}

func TestCheckCountry(t *testing.T) {
	ok := apitype.Check{Name: "wifi", Result: apitype.CheckOK, Detail: "wpa_supplicant answers"}
	reg := func(s string, err error) func() (string, error) { return func() (string, error) { return s, err } }
	for _, c := range []struct {
		want       wifi.Country
		have       string
		err        error
		result     string
		detail     string
		fixMention string
	}{
		{"DE", "DE", nil, apitype.CheckOK, "; country DE", ""},
		{"", "00", nil, apitype.CheckOK, "; no [wifi] country: the kernel's domain is 00", ""},
		{"DE", "00", nil, apitype.CheckWarn, "; [wifi] country is DE but the kernel's domain is 00", "wireless-regdb"},
		{"DE", "", errors.New("no nl80211"), apitype.CheckOK, "; regulatory domain unknown: no nl80211", ""},
	} {
		got := checkCountry(ok, c.want, reg(c.have, c.err))
		if got.Result != c.result || got.Detail != ok.Detail+c.detail || !strings.Contains(got.Fix, c.fixMention) {
			t.Errorf("%q with the kernel at %q (%v): %+v", c.want, c.have, c.err, got)
		}
	}
}
