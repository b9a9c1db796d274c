package network

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// These tests run the Manager's IPv6 in the wire's box namespace against
// a real dnsmasq sending router advertisements and answering DHCPv6 on
// the ISP side (see ispwire_host_test.go). They need root.

const (
	ispIPv6    = "2001:db8:45::1/64"
	ispDNS6    = "2001:db8:45::53"
	ipv6Prefix = "2001:db8:45::/64"
	// boxSLAAC is boxMAC's EUI-64 address in the prefix.
	boxSLAAC = "2001:db8:45:0:b0:aff:fe00:4501"
)

// startDnsmasq6 starts the wire's dnsmasq with router advertisements and
// the given DHCPv6 range ("2001:db8:45::,ra-stateless" for SLAAC and
// stateless DHCPv6), its DNS server in both RDNSS and DHCPv6, and DHCPv6
// answered only for vendor class IPTV_TEST of enterprise 3561 (the
// wire's IPv4 vendor tag).
func (l *ispWire) startDnsmasq6(t testing.TB, dhcpRange string, extra ...string) *dnsmasq {
	t.Helper()
	a, err := netlink.ParseAddr(ispIPv6)
	must(t, err)
	a.Flags = unix.IFA_F_NODAD
	must(t, l.hISP.AddrAdd(l.ispLink, a))
	args := append([]string{
		"--enable-ra", "--ra-param=" + ispIf + ",4,600", "--dhcp-range=" + dhcpRange,
		"--dhcp-option=option6:dns-server,[" + ispDNS6 + "]", "--dhcp-option=option6:domain-search,iptv.example",
		"--dhcp-vendorclass=set:iptv,enterprise:3561,IPTV_TEST",
	}, extra...)
	return l.startDnsmasq(t, args...)
}

// boxSysctl reads one of the box end's IPv6 settings.
func (l *ispWire) boxSysctl(t testing.TB, key string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", l.boxName, "cat", filepath.Join(ipv6SysctlDir(boxIf), key)).CombinedOutput()
	if err != nil {
		t.Fatalf("read %s: %v: %s", key, err, out)
	}
	return strings.TrimSpace(string(out))
}

// offIPv6 turns off what the kernel would do by itself on the box end,
// so that what works afterwards is the agent's doing.
func (l *ispWire) offIPv6(t testing.TB) {
	t.Helper()
	for _, kv := range []string{"accept_ra=0", "autoconf=0", "disable_ipv6=1"} {
		k := "net.ipv6.conf." + boxIf + "." + kv
		if out, err := exec.Command("ip", "netns", "exec", l.boxName, "sysctl", "-qw", k).CombinedOutput(); err != nil {
			t.Fatalf("sysctl %s: %v: %s", k, err, out)
		}
	}
}

// waitEvent waits for an event of kind whose detail holds s.
func waitEvent(t testing.TB, events chan UplinkEvent, kind, s string, timeout time.Duration) UplinkEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if e.Kind == kind && strings.Contains(e.Detail, s) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event with %q in %s", kind, s, timeout)
		}
	}
}

// waitResolv waits until the file at path holds s, reading it again at
// each event of the manager (and every 100 ms: the writer is the
// manager's RA reader, which reports no event of its own for DNS).
func waitResolv(t testing.TB, path, s string, events chan UplinkEvent, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return string(b)
		}
		select {
		case <-events:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s never held %q; it holds:\n%s", path, s, b)
		}
	}
}

func ipv6Uplink(v IPv6) Uplink {
	return Uplink{Parent: boxIf, IPv4: IPv4{Method: MethodOff}, IPv6: v}
}

// TestHostIPv6SLAAC: with the box end's IPv6 off, Apply turns it on; the
// kernel's SLAAC address and default route come from dnsmasq's RA, the
// manager reports the address by netlink, and the RA's RDNSS reaches
// resolv.conf.
func TestHostIPv6SLAAC(t *testing.T) {
	l := newISPWire(t)
	l.offIPv6(t)
	l.startDnsmasq6(t, "2001:db8:45::,ra-only,64,1h")
	resolv := filepath.Join(l.dir, "resolv.conf")
	m, events := newTestManager(t, l, func(o *ManagerOptions) { o.ResolvConf = resolv })

	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{ipv6Uplink(IPv6{Method: IPv6Auto})}}); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, events, "ipv6", "address "+boxSLAAC+"/64 (slaac)", 20*time.Second)
	t.Logf("apply to SLAAC address: %s (%s)", time.Since(start).Round(time.Millisecond), e.Detail)

	for k, want := range map[string]string{"accept_ra": "2", "autoconf": "1", "disable_ipv6": "0", "accept_ra_defrtr": "1"} {
		if got := l.boxSysctl(t, k); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	as, err := l.hBox.AddrList(l.boxLink, netlink.FAMILY_V6)
	must(t, err)
	var found bool
	for _, a := range as {
		if a.IP.String() == boxSLAAC {
			found = true
			if a.ValidLft <= 0 || a.ValidLft > 3600 || a.Flags&unix.IFA_F_PERMANENT != 0 {
				t.Errorf("SLAAC address flags %x valid %d: want a dynamic address with a lifetime", a.Flags, a.ValidLft)
			}
		}
	}
	if !found {
		t.Errorf("no %s among %v", boxSLAAC, as)
	}
	waitEvent(t, events, "ipv6", "default route via fe80::", 10*time.Second)
	v := l.ipv6View(t, m)
	if a := findAddr(v, boxSLAAC+"/64"); a == nil || a.Origin != OriginSLAAC || a.ValidFor == nil || *a.ValidFor > 3600 {
		t.Errorf("SLAAC address in the view: %+v", v.Addresses)
	}
	if v.Router == nil || v.Router.Managed || v.Router.Other || v.Router.Lifetime != 600 || strings.Join(v.Router.Prefixes, ",") != ipv6Prefix {
		t.Errorf("router in the view: %+v", v.Router)
	}

	got := waitResolv(t, resolv, "nameserver "+ispDNS6+"\n", events, 10*time.Second)
	if !strings.Contains(got, "# uplink0 (ipv6, metric 0): "+ispDNS6) {
		t.Errorf("resolv.conf does not name the IPv6 source:\n%s", got)
	}

	// Off again: the kernel drops every IPv6 address of the link, and the
	// agent its RA servers.
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{ipv6Uplink(IPv6{Method: IPv6Off})}}); err != nil {
		t.Fatal(err)
	}
	if got := l.boxSysctl(t, "disable_ipv6"); got != "1" {
		t.Errorf("disable_ipv6 = %s after method off", got)
	}
	if b, _ := os.ReadFile(resolv); strings.Contains(string(b), ispDNS6) {
		t.Errorf("RA server still in resolv.conf with IPv6 off:\n%s", b)
	}
}

// dhcpv6Opt17 is option 17 as dnsmasq matches it (hex): enterprise 3561,
// sub-option 1 of 11 bytes, "STB-MODEL-7".
const dhcpv6Opt17 = "00:00:0d:e9:00:01:00:0b:53:54:42:2d:4d:4f:44:45:4c:2d:37"

// iptv6 is the wire's IPTV uplink's IPv6: vendor class IPTV_TEST of
// enterprise 3561, which dnsmasq demands.
func iptv6(v IPv6) IPv6 {
	v.EnterpriseNumber, v.VendorClass = 3561, "IPTV_TEST"
	return v
}

// TestHostDHCPv6Stateful: dnsmasq's RA says M; the client gets an
// address (only with the vendor class dnsmasq demands, option 16, and
// the vendor option 1 of enterprise 3561 it looks for in option 17), puts
// it on the link with the lease's lifetime, hands the lease's DNS to the
// resolver, and when the uplink leaves releases the lease and takes the
// address off.
func TestHostDHCPv6Stateful(t *testing.T) {
	l := newISPWire(t)
	l.offIPv6(t)
	d := l.startDnsmasq6(t, "2001:db8:45::100,2001:db8:45::1ff,64,2m",
		"--dhcp-match=set:vopt,option6:17,"+dhcpv6Opt17, "--dhcp-ignore=tag:!vopt")
	resolv := filepath.Join(l.dir, "resolv.conf")
	m, events := newTestManager(t, l, func(o *ManagerOptions) { o.ResolvConf = resolv })

	start := time.Now()
	up := ipv6Uplink(iptv6(IPv6{Method: IPv6Auto, VendorOptions: map[string]string{"1": "STB-MODEL-7"}}))
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{up}}); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, events, "dhcpv6", "lease from", 20*time.Second)
	t.Logf("apply to DHCPv6 lease: %s (%s)", time.Since(start).Round(time.Millisecond), e.Detail)
	if !strings.Contains(e.Detail, "2001:db8:45::1") || !strings.Contains(e.Detail, "valid 2m0s") {
		t.Errorf("lease %q: want an address of the range valid 2m", e.Detail)
	}
	if _, err := d.waitLine("tags: vopt, iptv,", 5*time.Second); err != nil {
		t.Errorf("dnsmasq did not tag us by vendor options and class: %v", err)
	}

	var leased netlink.Addr
	as, err := l.hBox.AddrList(l.boxLink, netlink.FAMILY_V6)
	must(t, err)
	for _, a := range as {
		if ones, _ := a.Mask.Size(); ones == 128 && strings.HasPrefix(a.IP.String(), "2001:db8:45::1") {
			leased = a
		}
	}
	if leased.IPNet == nil {
		t.Fatalf("no DHCPv6 address among %v", as)
	}
	if leased.ValidLft < 100 || leased.ValidLft > 120 || leased.Flags&unix.IFA_F_PERMANENT != 0 {
		t.Errorf("DHCPv6 address valid %d flags %x, want about 120 s and not permanent", leased.ValidLft, leased.Flags)
	}
	waitResolv(t, resolv, "nameserver "+ispDNS6+"\n", events, 10*time.Second)

	if _, err := m.Apply(context.Background(), Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.waitLine("DHCPRELEASE(isp0)", 5*time.Second); err != nil {
		t.Errorf("the lease was not released: %v", err)
	}
	as, err = l.hBox.AddrList(l.boxLink, netlink.FAMILY_V6)
	must(t, err)
	for _, a := range as {
		if a.IP.Equal(leased.IP) {
			t.Errorf("%s still on the link after the uplink left", a.IPNet)
		}
	}
}

// TestHostDHCPv6WrongVendorClass: without the vendor class dnsmasq
// demands, no lease; the client says so.
func TestHostDHCPv6WrongVendorClass(t *testing.T) {
	l := newISPWire(t)
	l.startDnsmasq6(t, "2001:db8:45::100,2001:db8:45::1ff,64,2m")
	m, events := newTestManager(t, l)
	up := ipv6Uplink(IPv6{Method: IPv6Auto, EnterpriseNumber: 3561, VendorClass: "SOMETHING_ELSE"})
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{up}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(12 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == "dhcpv6" && strings.Contains(e.Detail, "lease from") {
				t.Fatalf("a lease with the wrong vendor class: %s", e.Detail)
			}
			if e.Kind == "dhcpv6" && strings.HasPrefix(e.Detail, "no lease") {
				return
			}
		case <-deadline:
			t.Fatal("no 'no lease' event in 12 s")
		}
	}
}

// TestHostDHCPv6Stateless: dnsmasq's RA says O (and A: SLAAC); the
// client asks for DNS alone with Information-Request.
func TestHostDHCPv6Stateless(t *testing.T) {
	l := newISPWire(t)
	l.startDnsmasq6(t, "2001:db8:45::,ra-stateless,64,1h")
	m, events := newTestManager(t, l)
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{ipv6Uplink(iptv6(IPv6{Method: IPv6Auto}))}}); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, events, "dhcpv6", "stateless: dns", 20*time.Second)
	if !strings.Contains(e.Detail, "dns ["+ispDNS6+"] search [iptv.example]") {
		t.Errorf("stateless reply %q", e.Detail)
	}
	l.waitAddr(t, boxSLAAC, events, 10*time.Second)
}

// waitAddr waits until the box end has address a, looking again at each
// event of the manager.
func (l *ispWire) waitAddr(t testing.TB, a string, events chan UplinkEvent, timeout time.Duration) netlink.Addr {
	t.Helper()
	deadline := time.After(timeout)
	for {
		as, err := l.hBox.AddrList(l.boxLink, netlink.FAMILY_V6)
		must(t, err)
		for _, got := range as {
			if got.IP.String() == a {
				return got
			}
		}
		select {
		case <-events:
		case <-deadline:
			t.Fatalf("no address %s in %s: %v", a, timeout, as)
		}
	}
}

// startKea6 runs ISC Kea's DHCPv6 server in the wire's isp namespace:
// dnsmasq delegates no prefixes, Kea does (pd-pools). It hands out
// addresses of 2001:db8:45::200-2ff and /56s of 2001:db8:4500::/40, for
// 12 s (renewal at 2 s, rebinding at 4 s). It returns its log lines and a
// func that kills it.
func (l *ispWire) startKea6(t testing.TB) (chan string, func()) {
	t.Helper()
	if _, err := exec.LookPath("kea-dhcp6"); err != nil {
		t.Skipf("needs kea-dhcp6 (Debian package kea-dhcp6-server): %v", err)
	}
	a, err := netlink.ParseAddr(ispIPv6)
	must(t, err)
	a.Flags = unix.IFA_F_NODAD
	must(t, l.hISP.AddrAdd(l.ispLink, a))
	conf := filepath.Join(l.dir, "kea6.json")
	must(t, os.WriteFile(conf, []byte(`{"Dhcp6": {
  "interfaces-config": {"interfaces": ["`+ispIf+`"], "service-sockets-max-retries": 40, "service-sockets-retry-wait-time": 250},
  "lease-database": {"type": "memfile", "persist": false},
  "server-id": {"type": "EN", "enterprise-id": 2495, "identifier": "0a0b0c0d", "persist": false},
  "preferred-lifetime": 8, "valid-lifetime": 12, "renew-timer": 2, "rebind-timer": 4,
  "subnet6": [{"subnet": "2001:db8:45::/64", "interface": "`+ispIf+`",
    "pools": [{"pool": "2001:db8:45::200-2001:db8:45::2ff"}],
    "pd-pools": [{"prefix": "2001:db8:4500::", "prefix-len": 40, "delegated-len": 56}],
    "option-data": [{"name": "dns-servers", "data": "`+ispDNS6+`"}]}],
  "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": "stdout"}], "severity": "INFO"}]
}}`), 0o644))
	cmd := exec.Command("ip", "netns", "exec", l.ispName, "kea-dhcp6", "-c", conf)
	cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+l.dir, "KEA_LOCKFILE_DIR="+l.dir)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	lines := make(chan string, 1000)
	var logText strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := bufio.NewScanner(out)
		for s.Scan() {
			logText.WriteString(s.Text() + "\n")
			select {
			case lines <- s.Text():
			default:
			}
		}
	}()
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		kill()
		if t.Failed() {
			t.Logf("kea-dhcp6 log:\n%s", logText.String())
		}
	})
	waitLine(t, lines, "DHCP6_STARTED", 10*time.Second)
	return lines, kill
}

// waitLine waits for a line holding s.
func waitLine(t testing.TB, lines chan string, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-lines:
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			t.Fatalf("no line with %q in %s", s, timeout)
		}
	}
}

// TestHostDHCPv6PrefixDelegation: with prefix_delegation = 56 the client
// asks Kea for a prefix beside its address and reports the one it got; it
// renews the lease at T1 (Kea's short timers), and when the server is
// gone the address leaves the link as the lease runs out.
func TestHostDHCPv6PrefixDelegation(t *testing.T) {
	l := newISPWire(t)
	kea, killKea := l.startKea6(t)
	m, events := newTestManager(t, l)
	up := ipv6Uplink(IPv6{Method: IPv6DHCP, PrefixDelegation: 56})
	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{up}}); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, events, "dhcpv6", "lease from", 20*time.Second)
	t.Logf("apply to DHCPv6 lease with a prefix: %s (%s)", time.Since(start).Round(time.Millisecond), e.Detail)
	if !strings.Contains(e.Detail, "2001:db8:45::2") || !strings.Contains(e.Detail, "delegated prefix 2001:db8:45") ||
		!strings.Contains(e.Detail, "/56 (valid 12s)") {
		t.Errorf("lease %q: want an address of the pool and a /56 of 2001:db8:4500::/40", e.Detail)
	}
	addr := strings.Fields(strings.SplitN(e.Detail, ": ", 2)[1])[0]
	waitLine(t, kea, "DHCP6_PD_LEASE_ALLOC", 5*time.Second)

	// net show: the address with its origin and lifetime, the prefix.
	v := l.ipv6View(t, m)
	if v.DHCPv6 == nil || v.DHCPv6.Mode != DHCPv6Stateful || v.DHCPv6.Prefix != strings.Fields(strings.SplitN(e.Detail, "delegated prefix ", 2)[1])[0] ||
		v.DHCPv6.PrefixValidFor == nil || *v.DHCPv6.PrefixValidFor > 12 {
		t.Errorf("dhcpv6 view %+v", v.DHCPv6)
	}
	if a := findAddr(v, addr+"/128"); a == nil || a.Origin != OriginDHCPv6 || a.ValidFor == nil || *a.ValidFor > 12 || *a.PreferredFor > 8 {
		t.Errorf("address %s in the view: %+v", addr, v.Addresses)
	}

	// Renewed at T1 (2 s): the same address and prefix again.
	again := waitEvent(t, events, "dhcpv6", "lease from", 5*time.Second)
	if again.Detail != e.Detail {
		t.Errorf("renewed lease %q, want %q", again.Detail, e.Detail)
	}
	waitLine(t, kea, "RENEW", 5*time.Second)

	// No server: Renew and Rebind go unanswered and the lease runs out
	// (12 s after the last renewal).
	killKea()
	waitEvent(t, events, "dhcpv6", "lease ran out", 20*time.Second)
	as, err := l.hBox.AddrList(l.boxLink, netlink.FAMILY_V6)
	must(t, err)
	for _, a := range as {
		if a.IP.String() == addr {
			t.Errorf("%s still on the link after its lease ran out", a.IPNet)
		}
	}
}

// ipv6View is the box uplink's IPv6 as net show has it, through JSON as
// the API sends it.
func (l *ispWire) ipv6View(t testing.TB, m *Manager) IPv6Status {
	t.Helper()
	view, err := m.View()
	must(t, err)
	b, err := json.Marshal(view)
	must(t, err)
	var back View
	must(t, json.Unmarshal(b, &back))
	for _, u := range back.Uplinks {
		if u.Name == boxIf && u.IPv6 != nil {
			return *u.IPv6
		}
	}
	t.Fatalf("no IPv6 of %s in the view: %s", boxIf, b)
	return IPv6Status{}
}

func findAddr(v IPv6Status, a string) *IPv6Addr {
	for i := range v.Addresses {
		if v.Addresses[i].Address == a {
			return &v.Addresses[i]
		}
	}
	return nil
}

// TestHostDHCPv6CarrierBack: when the uplink's carrier returns (the
// cable may lead elsewhere now) the client asks whether its lease is
// still on link (Confirm), and it is; the RA is solicited again.
func TestHostDHCPv6CarrierBack(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq6(t, "2001:db8:45::100,2001:db8:45::1ff,64,2m")
	m, events := newTestManager(t, l)
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{ipv6Uplink(iptv6(IPv6{Method: IPv6Auto}))}}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "dhcpv6", "lease from", 20*time.Second)
	must(t, l.hISP.LinkSetDown(l.ispLink))
	waitEvent(t, events, "link", "carrier down", 5*time.Second)
	must(t, l.hISP.LinkSetUp(l.ispLink))
	// Down took the ISP's address (keep_addr_on_down 0): dnsmasq serves
	// nothing without it.
	a, err := netlink.ParseAddr(ispIPv6)
	must(t, err)
	a.Flags = unix.IFA_F_NODAD
	must(t, l.hISP.AddrReplace(l.ispLink, a))
	waitEvent(t, events, "dhcpv6", "lease confirmed on link", 10*time.Second)
	if _, err := d.waitLine("DHCPCONFIRM(isp0)", 5*time.Second); err != nil {
		t.Errorf("dnsmasq saw no Confirm: %v", err)
	}
}

// TestHostDHCPv6RouterTurnsManaged: in mode auto, a router that said O
// (stateless) and then says M gets the client to ask for an address.
func TestHostDHCPv6RouterTurnsManaged(t *testing.T) {
	l := newISPWire(t)
	d := l.startDnsmasq6(t, "2001:db8:45::,ra-stateless,64,1h")
	m, events := newTestManager(t, l)
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{ipv6Uplink(iptv6(IPv6{Method: IPv6Auto}))}}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "dhcpv6", "stateless: dns", 20*time.Second)

	// The ISP's router again, now with a stateful range (its files in a
	// folder of their own: the first one's fifo is still there).
	d.kill()
	l.dir = t.TempDir()
	l.startDnsmasq(t, "--enable-ra", "--ra-param="+ispIf+",4,600", "--dhcp-range=2001:db8:45::100,2001:db8:45::1ff,64,2m",
		"--dhcp-vendorclass=set:iptv,enterprise:3561,IPTV_TEST")
	// A restarted dnsmasq's first unsolicited RA did not always come
	// within 15 s (1 run in 6): ask for one, as a host joining would.
	rs, err := openRAConn(l.box, l.boxLink.Attrs().Index)
	must(t, err)
	defer rs.Close()
	must(t, rs.solicit())
	waitEvent(t, events, "dhcpv6", "the router now says M: stateful", 15*time.Second)
	e := waitEvent(t, events, "dhcpv6", "lease from", 10*time.Second)
	if !strings.Contains(e.Detail, "2001:db8:45::1") {
		t.Errorf("lease %q", e.Detail)
	}
}
