package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/network"
)

// TestPrintUplinks: the Wi-Fi link is listed after the wired uplinks,
// with its network, and alone when no wired uplink is configured.
func TestPrintUplinks(t *testing.T) {
	vlan := 45
	lease := func(addr string) *network.DHCPStatus {
		return &network.DHCPStatus{State: network.StateBound, Lease: &network.LeaseTimes{Lease: network.Lease{
			Address: netip.MustParsePrefix(addr), Server: netip.MustParseAddr("10.0.0.1")}}}
	}
	wired := network.UplinkStatus{Name: "eth0.45", Parent: "eth0", VLAN: &vlan, Method: "dhcp", Up: true, Carrier: true, DHCP: lease("192.0.2.10/24")}
	wifiUp := &network.UplinkStatus{Name: "wlan0", Method: "dhcp", Up: true, Carrier: true, SSID: "home", DHCP: lease("10.78.0.23/24")}
	wifiDown := &network.UplinkStatus{Name: "wlan0", Method: "dhcp", Detail: "not associated (boxagent wifi status)"}
	refused := network.Dot1XStatus{State: network.Dot1XFailed, EAP: "peap", Method: "PEAP", Failures: 1,
		Reason: "EAP-PEAP: the authenticator sent EAP-Failure: wrong identity or password, or the account is refused"}
	dot1x := network.UplinkStatus{Name: "eth0.45", Parent: "eth0", VLAN: &vlan, Method: "dhcp", Carrier: true, Dot1X: &refused,
		Detail: refused.Text(), DHCP: &network.DHCPStatus{State: network.StateInit}}
	cases := []struct {
		name string
		v    network.View
		want []string // rows, in order
	}{
		{"both", network.View{Uplinks: []network.UplinkStatus{wired}, WiFi: wifiUp}, []string{
			`eth0.45  eth0    45    dhcp       up     192.0.2.10/24  -`,
			`wlan0    -       -     wifi dhcp  up     10.78.0.23/24  ssid "home"`,
			"\nwlan0: dhcp bound",
		}},
		{"Wi-Fi only, down", network.View{WiFi: wifiDown}, []string{
			`wlan0   -       -     wifi dhcp  down   -        not associated (boxagent wifi status)`,
		}},
		{"802.1X refused", network.View{Uplinks: []network.UplinkStatus{dot1x}}, []string{
			`eth0.45  eth0    45    dhcp    down   -        802.1X failed (PEAP): EAP-PEAP: the authenticator sent EAP-Failure`,
			"\neth0.45: 802.1x failed (PEAP); 0 authentications, 1 refused\n  reason:   EAP-PEAP: the authenticator sent EAP-Failure",
			"\neth0.45: dhcp init",
		}},
		{"none", network.View{}, nil},
	}
	for _, c := range cases {
		var b strings.Builder
		if err := printUplinks(&b, c.v); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		t.Logf("%s:\n%s", c.name, out)
		if c.want == nil && out != "" {
			t.Errorf("%s: %q, want nothing", c.name, out)
		}
		at := 0
		for _, row := range c.want {
			i := strings.Index(out[at:], row)
			if i < 0 {
				t.Errorf("%s: no %q after byte %d in:\n%s", c.name, row, at, out)
				break
			}
			at += i + len(row)
		}
	}
}

// TestPrintDefaultRoute: net show says which uplink carries the internet.
func TestPrintDefaultRoute(t *testing.T) {
	for _, c := range []struct {
		d    *network.DefaultRoute
		want string
	}{
		{nil, "internet: no default route\n"},
		{&network.DefaultRoute{RouteInfo: network.RouteInfo{Dst: "default", Link: "ppp0", Metric: 50}, Uplink: "internet", Others: 1},
			"internet: default route on ppp0 (uplink internet), metric 50; 1 more default route(s) behind it\n"},
		{&network.DefaultRoute{RouteInfo: network.RouteInfo{Dst: "default", Link: "usb0", Gateway: "192.168.42.129", Metric: 100}},
			"internet: default route via 192.168.42.129 on usb0 (not an uplink of the agent's), metric 100\n"},
	} {
		var b strings.Builder
		printDefaultRoute(&b, c.d)
		if b.String() != c.want+"\n" {
			t.Errorf("%q, want %q", b.String(), c.want+"\n")
		}
	}
}
