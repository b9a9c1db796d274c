//go:build lab

package network

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestGuestIPv6OverVLAN: IPv6 on the IPTV VLAN 45 of the board against
// dnsmasq in the ISP's namespace sending RAs with M and A (SLAAC and
// stateful DHCPv6 together) and answering DHCPv6 only for vendor class
// IPTV_TEST of enterprise 3561 (option 16): the kernel's SLAAC address
// on eth6.45 once the agent turned its IPv6 on, a DHCPv6 address with
// its lease's lifetime, the RA's and DHCPv6's DNS server in resolv.conf,
// both addresses reach the ISP (ping), and `net show` names each
// address's origin. Then the figures: apply to the SLAAC address and to
// the DHCPv6 lease.
func TestGuestIPv6OverVLAN(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, "8021q", "veth")
	isp := guest.NewNetns(t, "isp6")
	guest.Veth(t, "eth6", guest.InitNS, "isp0", isp)
	ispVLAN := isp.AddVLAN(t, "isp0", 45)
	isp.Addr(t, ispVLAN, "10.45.6.1/24")
	isp.IP(t, "addr", "add", "2001:db8:46::1/64", "dev", ispVLAN, "nodad")
	eth6, err := net.InterfaceByName("eth6")
	must(t, err)
	// eth6.45 takes eth6's MAC; the kernel's EUI-64 address of it.
	mac := eth6.HardwareAddr
	slaac := net.IP{0x20, 0x01, 0x0d, 0xb8, 0, 0x46, 0, 0, mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}.String()
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: ispVLAN, Range: "10.45.6.100,10.45.6.200,255.255.255.0,1h", NoPing: true,
		Extra: []string{
			"--enable-ra", "--ra-param=" + ispVLAN + ",4,600",
			"--dhcp-range=2001:db8:46::100,2001:db8:46::1ff,slaac,64,2m",
			"--dhcp-option=option6:dns-server,[2001:db8:46::53]",
			"--dhcp-vendorclass=set:iptv6,enterprise:3561,IPTV_TEST", "--dhcp-ignore=tag:!iptv6",
		}})

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	m, _, events := guestManager(t, ManagerOptions{ResolvConf: resolv})
	u := Uplink{Parent: "eth6", VLAN: ptr(45), IPv4: IPv4{Method: MethodOff}, IPv6: IPv6{
		Method: IPv6Auto, EnterpriseNumber: 3561, VendorClass: "IPTV_TEST",
	}}
	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatal(err)
	}
	// Milestones: the SLAAC address (DAD passed), the lease, the lease's
	// address past DAD (the kernel's, before it can be used).
	var slaacAt, leaseAt, usableAt time.Duration
	var lease, leased string
	deadline := time.After(30 * time.Second)
	for slaacAt == 0 || leaseAt == 0 || usableAt == 0 {
		select {
		case e := <-events:
			switch {
			case e.Kind == "ipv6" && strings.HasPrefix(e.Detail, "address "+slaac+"/64 (slaac)") && slaacAt == 0:
				slaacAt = time.Since(start)
			case e.Kind == "dhcpv6" && strings.HasPrefix(e.Detail, "lease from") && leaseAt == 0:
				leaseAt, lease = time.Since(start), e.Detail
				leased = strings.Fields(strings.SplitN(lease, ": ", 2)[1])[0]
			case e.Kind == "ipv6" && leased != "" && strings.HasPrefix(e.Detail, "address "+leased+"/128 (dhcpv6)"):
				usableAt = time.Since(start)
			}
		case <-deadline:
			t.Fatalf("in 30 s: SLAAC address %s after %s, DHCPv6 lease after %s, its address past DAD after %s (0: none)", slaac, slaacAt, leaseAt, usableAt)
		}
	}
	t.Logf("apply to SLAAC address %s: %s; to DHCPv6 lease: %s, its address past DAD: %s (%s)", slaac,
		slaacAt.Round(time.Millisecond), leaseAt.Round(time.Millisecond), usableAt.Round(time.Millisecond), lease)
	if !strings.Contains(lease, "2001:db8:46::1") || !strings.Contains(lease, "valid 2m0s") {
		t.Errorf("lease %q: want an address of the range valid 2m", lease)
	}

	b, err := os.ReadFile(resolv)
	must(t, err)
	if !strings.Contains(string(b), "nameserver 2001:db8:46::53\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
	for _, a := range []string{slaac, leased} {
		if out, err := guest.InitNS.Command("busybox", "ping", "-6", "-c", "1", "-w", "10", "-I", a, "2001:db8:46::1").CombinedOutput(); err != nil {
			t.Errorf("ping the ISP from %s: %v: %s", a, err, out)
		}
	}

	v, err := m.View()
	must(t, err)
	st := v.Uplinks[0].IPv6
	if st == nil || st.Router == nil || !st.Router.Managed || st.DHCPv6 == nil || st.DHCPv6.Mode != DHCPv6Stateful {
		t.Fatalf("net show ipv6: %+v", st)
	}
	if a := findAddr(*st, slaac+"/64"); a == nil || a.Origin != OriginSLAAC {
		t.Errorf("SLAAC address in net show: %+v", st.Addresses)
	}
	if a := findAddr(*st, leased+"/128"); a == nil || a.Origin != OriginDHCPv6 || a.ValidFor == nil || *a.ValidFor > 120 {
		t.Errorf("DHCPv6 address in net show: %+v", st.Addresses)
	}
}

// TestGuestIPv6OverPPPoE: IPv6 over a PPPoE session (the internet
// uplink of China's and Europe's ISPs): pppd negotiates IPV6CP with
// pppoe-server's, the agent starts the uplink's IPv6 on the box's PPP
// link, and the ISP's dnsmasq on its end of the session (RAs with A and
// O, stateless DHCPv6) gives the box a SLAAC address on the PPP link
// and, by Information-Request, its DNS server.
func TestGuestIPv6OverPPPoE(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, guest.PPPoEModules...)
	isp := guest.NewNetns(t, "isppp6")
	guest.Veth(t, "eth7", guest.InitNS, "isp0", isp)
	vlan := isp.AddVLAN(t, "isp0", 35)
	password := guest.PPPoEPassword(t)
	guest.StartPPPoEServer(t, guest.PPPoEServerConfig{NS: isp, Interface: vlan, Local: "10.35.0.1", Remote: "10.35.0.10",
		User: guest.PPPoEUser, Password: password, IPv6: true})

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	m, _, events := guestManager(t, ManagerOptions{ResolvConf: resolv, PPPoE: PPPoEConfig{Holdoff: time.Second, Restart: time.Second}})
	u := Uplink{Parent: "eth7", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: guest.PPPoEUser, Password: password},
		IPv6: IPv6{Method: IPv6Auto}}
	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatal(err)
	}
	var st PPPoEStatus
	for deadline := time.After(30 * time.Second); !st.Up || !st.LinkLocal.IsValid(); {
		select {
		case e := <-events:
			if e.Kind == "pppoe" && e.PPPoE != nil {
				st = *e.PPPoE
			}
		case <-deadline:
			t.Fatalf("no PPPoE session with an IPv6 link-local address in 30 s: %+v", st)
		}
	}
	t.Logf("PPPoE session up with IPv6 %s after apply: %s %s, link-local %s", time.Since(start).Round(time.Millisecond), st.Link, st.Address, st.LinkLocal)

	// The ISP's end of the session is the first PPP link of its
	// namespace: a prefix there, and dnsmasq advertising it.
	isp.IP(t, "addr", "add", "2001:db8:47::1/64", "dev", "ppp0", "nodad")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: "ppp0", Range: "10.35.0.100,10.35.0.200,255.255.255.0,1h", NoPing: true,
		Extra: []string{
			"--enable-ra", "--ra-param=ppp0,4,600",
			"--dhcp-range=2001:db8:47::,ra-stateless,64,1h",
			"--dhcp-option=option6:dns-server,[2001:db8:47::53]",
		}})
	ra := time.Now()
	var slaac string
	var dnsAt time.Duration
	for deadline := time.After(30 * time.Second); slaac == "" || dnsAt == 0; {
		select {
		case e := <-events:
			switch {
			case e.Kind == "ipv6" && strings.HasPrefix(e.Detail, "address 2001:db8:47:") && strings.Contains(e.Detail, "(slaac)"):
				slaac = strings.TrimSuffix(strings.Fields(e.Detail)[1], "/64")
				t.Logf("SLAAC address on %s %s after dnsmasq started: %s", st.Link, time.Since(ra).Round(time.Millisecond), e.Detail)
			case e.Kind == "dhcpv6" && strings.HasPrefix(e.Detail, "stateless: dns [2001:db8:47::53]"):
				dnsAt = time.Since(ra)
			}
		case <-deadline:
			t.Fatalf("in 30 s: SLAAC address %q, stateless DHCPv6 after %s (0: none)", slaac, dnsAt)
		}
	}
	b, err := os.ReadFile(resolv)
	must(t, err)
	if !strings.Contains(string(b), "nameserver 2001:db8:47::53\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
	if out, err := guest.InitNS.Command("busybox", "ping", "-6", "-c", "1", "-w", "10", "-I", slaac, "2001:db8:47::1").CombinedOutput(); err != nil {
		t.Errorf("ping the ISP through the session from %s: %v: %s", slaac, err, out)
	}
	v, err := m.View()
	must(t, err)
	if s6 := v.Uplinks[0].IPv6; s6 == nil || findAddr(*s6, slaac+"/64") == nil || s6.Router == nil {
		t.Errorf("net show ipv6 of the PPPoE uplink: %+v", s6)
	}
}
