//go:build lab

package systemd

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/network"
)

// TestGuestIPv6Unit: the hardened agent (user boxagent,
// ProtectKernelTunables) runs an uplink's IPv6: it sets the link's
// sysctls through the unit's one writable corner of /proc/sys
// (accept_ra = 2, which nothing else sets), reads the RAs of dnsmasq in a
// namespace behind a veth (CAP_NET_RAW) and gets a DHCPv6 lease from its
// port 546 (CAP_NET_BIND_SERVICE); `net show --json` shows the SLAAC and
// DHCPv6 addresses with their origins.
func TestGuestIPv6Unit(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	guest.Modprobe(t, "veth")
	isp := guest.NewNetns(t, "isp6u")
	guest.Veth(t, "eth8", guest.InitNS, "isp0", isp)
	isp.Addr(t, "isp0", "10.48.0.1/24")
	isp.IP(t, "addr", "add", "2001:db8:48::1/64", "dev", "isp0", "nodad")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: "isp0", Range: "10.48.0.100,10.48.0.200,255.255.255.0,1h", NoPing: true,
		Extra: []string{
			"--enable-ra", "--ra-param=isp0,4,600",
			"--dhcp-range=2001:db8:48::100,2001:db8:48::1ff,slaac,64,2m",
			"--dhcp-option=option6:dns-server,[2001:db8:48::53]",
		}})

	sh(t, "systemctl start boxagent.service")
	c := client.New(paths.Default.Socket(), "cli")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := network.Uplink{Parent: "eth8", IPv4: network.IPv4{Method: network.MethodOff}, IPv6: network.IPv6{Method: network.IPv6Auto}}
	start := time.Now()
	if _, _, err := c.NetUplinkAdd(ctx, u); err != nil {
		t.Fatalf("net uplink add: %v\n%s", err, journal(t, "boxagent.service"))
	}
	t.Cleanup(func() {
		if _, _, err := c.NetUplinkDel(context.Background(), "eth8"); err != nil {
			t.Errorf("net uplink del: %v", err)
		}
	})
	var lease, slaac string
	err := c.EventsSince(ctx, 0, func(ev localapi.Event) error {
		var e network.UplinkEvent
		if ev.Type != "net" || json.Unmarshal(ev.Data, &e) != nil || e.Uplink != "eth8" {
			return nil
		}
		switch {
		case e.Kind == "dhcpv6" && strings.HasPrefix(e.Detail, "lease from"):
			lease = e.Detail
		case e.Kind == "ipv6" && strings.HasPrefix(e.Detail, "address 2001:db8:48:0:") && strings.Contains(e.Detail, "(slaac)"):
			slaac = e.Detail
		}
		if lease != "" && slaac != "" {
			return client.ErrStop
		}
		return nil
	})
	if lease == "" || slaac == "" {
		t.Fatalf("lease %q, SLAAC %q (%v):\n%s", lease, slaac, err, journal(t, "boxagent.service"))
	}
	t.Logf("bench ipv6-unit: DHCPv6 lease and SLAAC address %s after uplink add: %s; %s", time.Since(start).Round(time.Millisecond), lease, slaac)
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/eth8/accept_ra"); err != nil || strings.TrimSpace(string(b)) != "2" {
		t.Errorf("accept_ra of eth8 %q, %v: want 2, the agent's", b, err)
	}
	var v network.View
	if err := json.Unmarshal([]byte(sh(t, "boxagent net show --json")), &v); err != nil {
		t.Fatal(err)
	}
	origins := map[string]bool{}
	for _, s := range v.Uplinks {
		if s.Name == "eth8" && s.IPv6 != nil {
			for _, a := range s.IPv6.Addresses {
				origins[a.Origin] = true
			}
		}
	}
	if !origins[network.OriginDHCPv6] || !origins[network.OriginSLAAC] {
		t.Errorf("net show --json: want SLAAC and DHCPv6 addresses on eth8: %+v", v.Uplinks)
	}
}
