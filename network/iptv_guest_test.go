//go:build lab

package network_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/network"
)

// TestGuestIPTVBesideInternet is the ISP's usual set-up on the board, with
// the README's own config (its "IPTV beside internet" example, read from
// the README): behind one link, the ISP's namespace runs pppoe-server on
// VLAN 35 (the internet) and dnsmasq on VLAN 45 (IPTV), which pushes the
// IPTV platform's routes with option 121 (and a default route, as RFC
// 3442 lets it) and renews every 10 s. The agent (boxagent serve) brings
// both up; then, followed by a netlink route subscription from before the
// agent starts, the default route is only ever on the PPPoE link, through
// the IPTV lease's renewals; option 121's routes and the static
// 239.0.0.0/8 are on the VLAN 45 link; `net show --json` names the
// internet uplink as the default route's holder; and a multicast join
// with no interface given (the kernel picks by route) sends its IGMP
// report out of VLAN 45, seen by the ISP there and not inside the PPPoE
// session, while a group outside 239.0.0.0/8 (the control) goes by the
// default route, inside the session. The IPTV link speaks IGMPv2
// (igmp_version = 2), the PPP link the kernel's v3.
func TestGuestIPTVBesideInternet(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, guest.PPPoEModules...)
	ispNS := guest.NewNetns(t, "ispi")
	guest.Veth(t, "eth5", guest.InitNS, "isp0", ispNS)
	config, user, password := readmeIPTVConfig(t, "eth5")
	guest.StartPPPoEServer(t, guest.PPPoEServerConfig{NS: ispNS, Interface: ispNS.AddVLAN(t, "isp0", 35),
		Local: "10.35.0.1", Remote: "10.35.0.10", User: user, Password: password})
	iptvVLAN := ispNS.AddVLAN(t, "isp0", 45)
	ispNS.Addr(t, iptvVLAN, "10.45.5.1/24")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: ispNS, Interface: iptvVLAN, Range: "10.45.5.100,10.45.5.200,255.255.255.0,2m", VendorClass: "IPTV_STB", NoPing: true,
		Extra: []string{
			"--dhcp-option=option:router,10.45.5.1",
			"--dhcp-option=121,10.200.0.0/16,10.45.5.1,0.0.0.0/0,10.45.5.1",
			// dnsmasq's shortest lease is 2 min: T1 set apart renews often.
			"--dhcp-option=option:T1,10", "--dhcp-option=option:T2,100",
		}})
	isp, err := netns.GetFromName("ispi")
	must(t, err)
	defer isp.Close()
	igmp := network.CaptureIGMP(t, isp)

	defaults := watchDefaultRoutes(t)
	start := time.Now()
	a := serveInGuest(t, "iptv", config)
	ppp := a.waitNet("internet up", 60*time.Second, func(e network.UplinkEvent) bool {
		return e.Kind == "pppoe" && e.Uplink == "internet" && e.PPPoE != nil && e.PPPoE.Up
	}).PPPoE
	t.Logf("internet: PPPoE session up %s after the agent's start: %s %s", time.Since(start).Round(time.Millisecond), ppp.Link, ppp.Address)
	bound := a.waitNet("iptv bound", 30*time.Second, dhcpBound("iptv")).DHCP.Lease
	t.Logf("iptv: lease %s, T1 %s, routes %v", bound.Address, bound.T1, bound.Routes)
	pppLink, err := netlink.LinkByName(ppp.Link)
	must(t, err)
	iptv, err := netlink.LinkByName("iptv")
	must(t, err)

	wantIPTV := []string{"10.45.5.0/24", "10.200.0.0/16 via 10.45.5.1", "239.0.0.0/8"}
	checkLinkRoutes(t, "bound", iptv, wantIPTV)
	checkDefault(t, "bound", pppLink)

	// The view names the internet uplink as the holder.
	out, errs, code := a.run("net", "show", "--json")
	var v network.View
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("net show --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if v.Default == nil || v.Default.Uplink != "internet" || v.Default.Link != ppp.Link || v.Default.Others != 0 {
		t.Errorf("net show --json: default_route %+v, want on %s, uplink internet, alone", v.Default, ppp.Link)
	}
	out, _, _ = a.run("net", "show")
	t.Logf("boxagent net show:\n%s", out)
	if want := "internet: default route on " + ppp.Link + " (uplink internet)"; !strings.Contains(out, want) {
		t.Errorf("net show lacks %q", want)
	}

	// Multicast joins, the interface left to the kernel's route lookup.
	for _, g := range []string{"239.1.2.3", "225.1.2.3"} {
		c, err := net.ListenMulticastUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(g), Port: 5004})
		must(t, err)
		defer c.Close()
	}
	onVLAN45 := func(r network.IGMPReport) bool { return r.Link == "isp0.45" && r.Carrier == "ip" }
	if r, ok := igmp.Wait(30*time.Second, func(r network.IGMPReport) bool { return onVLAN45(r) && names(r, "239.1.2.3") }); ok {
		t.Logf("the join of 239.1.2.3 at the ISP: %s", r)
		// igmp_version = 2 on the IPTV uplink; the kernel's own is v3.
		if r.Version != 2 {
			t.Errorf("IGMPv%d on VLAN 45, want v2 (igmp_version = 2)", r.Version)
		}
	} else {
		t.Errorf("no IGMP report for 239.1.2.3 on the ISP's VLAN 45 in 30 s; seen: %v", igmp.Reports())
	}
	// The control: a group outside 239.0.0.0/8 follows the default route,
	// into the PPPoE session, where the capture sees it.
	if r, ok := igmp.Wait(30*time.Second, func(r network.IGMPReport) bool { return r.Carrier == "pppoe" && names(r, "225.1.2.3") }); ok {
		t.Logf("the control's join of 225.1.2.3 at the ISP: %s", r)
		if r.Version != 3 {
			t.Errorf("IGMPv%d in the PPPoE session, want the kernel's v3 (igmp_version is the IPTV uplink's only)", r.Version)
		}
	} else {
		t.Errorf("no IGMP report for 225.1.2.3 inside the PPPoE session in 30 s: the capture does not see that side; seen: %v", igmp.Reports())
	}

	// Two renewals of the IPTV lease (T1 10 s), each applied again.
	for i := range 2 {
		a.waitNet("iptv renewing", 90*time.Second, func(e network.UplinkEvent) bool {
			return e.Kind == "dhcp" && e.Uplink == "iptv" && e.DHCP != nil && e.DHCP.State == network.StateRenewing
		})
		e := a.waitNet("iptv renewed", 30*time.Second, dhcpBound("iptv"))
		t.Logf("renewal %d: %s", i+1, e.DHCP.Lease.Address)
	}
	checkLinkRoutes(t, "renewed", iptv, wantIPTV)
	checkDefault(t, "renewed", pppLink)

	// Every change of a default route since before the agent started:
	// only ever on the PPPoE link, never taken away from it.
	changes := defaults.stop()
	for _, c := range changes {
		if c.index != pppLink.Attrs().Index || !c.added {
			t.Errorf("the default route moved: %s", c)
		}
	}
	t.Logf("default route changes: %v", changes)
	reports := igmp.Stop()
	for _, r := range reports {
		if names(r, "239.1.2.3") && !onVLAN45(r) && r.Link != "isp0/vlan 45" {
			t.Errorf("IGMP for 239.1.2.3 left by the wrong way: %s", r)
		}
	}
	t.Logf("IGMP at the ISP: %v", reports)
}

// readmeIPTVConfig is the README's "IPTV beside internet" example with
// the board's link as the parent and a fresh PPPoE password, and the
// PPPoE user it names.
func readmeIPTVConfig(t *testing.T, parent string) (config, user, password string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	must(t, err)
	m := regexp.MustCompile("(?s)\\*\\*IPTV beside internet\\.\\*\\*.*?```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no toml block in its \"IPTV beside internet\" section")
	}
	config = string(m[1])
	u := regexp.MustCompile(`(?m)^user = "([^"]*)"$`).FindStringSubmatch(config)
	if u == nil || strings.Count(config, `parent = "eth0"`) != 2 || strings.Count(config, `password = "…"`) != 1 {
		t.Fatalf("the README's IPTV example is not as this test expects:\n%s", config)
	}
	password = guest.PPPoEPassword(t)
	config = strings.ReplaceAll(config, `parent = "eth0"`, fmt.Sprintf("parent = %q", parent))
	config = strings.Replace(config, `password = "…"`, fmt.Sprintf("password = %q", password), 1)
	return "board = \"auto\"\n" + config, u[1], password
}

func names(r network.IGMPReport, group string) bool {
	return slices.Contains(r.Groups, netip.MustParseAddr(group))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkLinkRoutes compares the IPv4 routes of link in the main table
// with want ("dst" or "dst via gw"), in any order.
func checkLinkRoutes(t *testing.T, when string, link netlink.Link, want []string) {
	t.Helper()
	rs, err := netlink.RouteList(link, netlink.FAMILY_V4)
	must(t, err)
	var got []string
	for _, r := range rs {
		s := "default"
		if r.Dst != nil {
			s = r.Dst.String()
		}
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		got = append(got, s)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: routes on %s %v, want %v", when, link.Attrs().Name, got, want)
	}
}

// checkDefault wants one IPv4 default route in the main table, on link.
func checkDefault(t *testing.T, when string, link netlink.Link) {
	t.Helper()
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	must(t, err)
	var on []int
	for _, r := range rs {
		if isDefault(r) {
			on = append(on, r.LinkIndex)
		}
	}
	if len(on) != 1 || on[0] != link.Attrs().Index {
		t.Errorf("%s: default routes on links %v, want only on %s (%d)", when, on, link.Attrs().Name, link.Attrs().Index)
	}
}

func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0 && r.Dst.IP.To4() != nil
}

// defaultChange is one change of an IPv4 default route of the main table.
type defaultChange struct {
	added  bool
	index  int
	link   string
	gw     net.IP
	metric int
}

func (c defaultChange) String() string {
	what := "removed from"
	if c.added {
		what = "added on"
	}
	s := fmt.Sprintf("default route %s %s (%d), metric %d", what, c.link, c.index, c.metric)
	if c.gw != nil {
		s += " via " + c.gw.String()
	}
	return s
}

// defaultWatch records every change of the box's IPv4 default routes, as
// the kernel announces them (no polling: a moment without the default
// route, or with a second one, is in the record).
type defaultWatch struct {
	mu      sync.Mutex
	changes []defaultChange
	done    chan struct{}
	ended   chan struct{}
}

func watchDefaultRoutes(t *testing.T) *defaultWatch {
	t.Helper()
	w := &defaultWatch{done: make(chan struct{}), ended: make(chan struct{})}
	updates := make(chan netlink.RouteUpdate, 256)
	err := netlink.RouteSubscribeWithOptions(updates, w.done, netlink.RouteSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case <-w.done: // stopped: the socket's close ends its read
			default:
				t.Errorf("route subscription: %v", err)
			}
		},
	})
	must(t, err)
	go func() {
		defer close(w.ended)
		for u := range updates {
			if u.Table != unix.RT_TABLE_MAIN || u.Family != netlink.FAMILY_V4 || !isDefault(u.Route) {
				continue
			}
			c := defaultChange{added: u.Type == unix.RTM_NEWROUTE, index: u.LinkIndex, gw: u.Gw, metric: u.Priority, link: fmt.Sprintf("ifindex %d", u.LinkIndex)}
			if l, err := netlink.LinkByIndex(u.LinkIndex); err == nil {
				c.link = l.Attrs().Name
			}
			w.mu.Lock()
			w.changes = append(w.changes, c)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the watch and returns what it saw.
func (w *defaultWatch) stop() []defaultChange {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	<-w.ended
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}
