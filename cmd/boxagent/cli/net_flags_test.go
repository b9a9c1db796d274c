package cli

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/network"
)

// uplinkAdd runs `net uplink add` with args through a transport that
// takes its call: the uplink it would send, nil when it sent none.
func uplinkAdd(t *testing.T, stdin string, args ...string) (sent *network.Uplink, stderr string, code int) {
	t.Helper()
	e, _, errb := testEnv()
	e.Stdin = strings.NewReader(stdin)
	capture := &client.CaptureTransport{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code = run(ctx, e, append([]string{"net", "uplink", "add"}, args...), &remote{rt: capture, name: "test"})
	if capture.Method == "" {
		return nil, errb.String(), code
	}
	if capture.Method != "POST" || capture.Path != "/api/v1/net/uplinks" {
		t.Fatalf("uplink add %q called %s %s", args, capture.Method, capture.Path)
	}
	sent = &network.Uplink{}
	if err := json.Unmarshal(capture.Body, sent); err != nil {
		t.Fatalf("uplink add %q sent %s: %v", args, capture.Body, err)
	}
	return sent, errb.String(), code
}

// TestNetUplinkAddFlags: the routing and IPv6 flags of uplink add become
// the uplink's keys, as an ISP's IPTV VLAN and internet uplink need them.
func TestNetUplinkAddFlags(t *testing.T) {
	no := new(false)
	vlan := func(n int) *int { return &n }
	tests := []struct {
		name string
		args []string
		want network.Uplink
	}{
		{"no new flags", []string{"--parent", "eth0"},
			network.Uplink{Parent: "eth0", IPv4: network.IPv4{Method: "dhcp"}}},
		{"iptv vlan", []string{"--parent", "eth0", "--vlan", "45", "--no-default-route", "--route", "239.0.0.0/8",
			"--route", " 10.99.0.0/16  via 10.45.0.1 ", "--igmp-version", "2"},
			network.Uplink{Parent: "eth0", VLAN: vlan(45), IPv4: network.IPv4{Method: "dhcp", DefaultRoute: no,
				Routes: []network.RouteConfig{{To: "239.0.0.0/8"}, {To: "10.99.0.0/16", Via: "10.45.0.1"}}, IGMPVersion: 2}}},
		{"iptv vlan with ipv6", []string{"--parent", "eth0", "--vlan", "45", "--no-default-route", "--ipv6", "auto",
			"--addr-gen-mode", "random", "--enterprise-number", "3561", "--ipv6-vendor-class", "IPTV_STB",
			"--ipv6-vendor-option", "1=hex:0a0b", "--ipv6-vendor-option", "2=box=7"},
			network.Uplink{Parent: "eth0", VLAN: vlan(45), IPv4: network.IPv4{Method: "dhcp", DefaultRoute: no},
				IPv6: network.IPv6{Method: "auto", AddrGenMode: "random", DefaultRoute: no, EnterpriseNumber: 3561,
					VendorClass: "IPTV_STB", VendorOptions: map[string]string{"1": "hex:0a0b", "2": "box=7"}}}},
		{"internet with a delegated prefix", []string{"--parent", "eth0", "--vlan", "35", "--method", "pppoe", "--user", "alice@isp",
			"--ipv6", "dhcp", "--dhcpv6", "stateful", "--prefix-delegation", "56", "--ipv6-route-metric", "50"},
			network.Uplink{Parent: "eth0", VLAN: vlan(35), IPv4: network.IPv4{Method: "pppoe", User: "alice@isp"},
				IPv6: network.IPv6{Method: "dhcp", DHCPv6: "stateful", PrefixDelegation: 56, RouteMetric: 50}}},
		{"no default route, ipv6 off", []string{"--parent", "eth0", "--no-default-route", "--ipv6", "off"},
			network.Uplink{Parent: "eth0", IPv4: network.IPv4{Method: "dhcp", DefaultRoute: no}, IPv6: network.IPv6{Method: "off"}}},
		{"static with a route", []string{"--parent", "eth0", "--method", "static", "--address", "192.0.2.10/24",
			"--no-default-route", "--route", "198.51.100.0/24 via 192.0.2.1"},
			network.Uplink{Parent: "eth0", IPv4: network.IPv4{Method: "static", Address: "192.0.2.10/24", DefaultRoute: no,
				Routes: []network.RouteConfig{{To: "198.51.100.0/24", Via: "192.0.2.1"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, stderr, _ := uplinkAdd(t, "", tt.args...)
			if got == nil {
				t.Fatalf("sent nothing: %s", stderr)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tt.want)
				t.Errorf("sent\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestNetUplinkAddRefused: a bad value of the routing and IPv6 flags is
// a usage error that names the flag, and nothing is sent.
func TestNetUplinkAddRefused(t *testing.T) {
	tests := []struct {
		args   []string
		stdin  string
		stderr string
	}{
		{[]string{"--route", "239.0.0.0/8 dev eth0"}, "", `--route "239.0.0.0/8 dev eth0" is not 'TO' or 'TO via GW'`},
		{[]string{"--route", "10.0.0.0/8 via"}, "", `--route "10.0.0.0/8 via" is not 'TO' or 'TO via GW'`},
		{[]string{"--route", ""}, "", `--route "" is not 'TO' or 'TO via GW'`},
		{[]string{"--route", "239.0.0.0/8", "--route", "iptv/8"}, "", `--route: "iptv/8" is not an IPv4 prefix`},
		{[]string{"--route", "239.1.0.0/8"}, "", `--route: "239.1.0.0/8" has host bits set: write 239.0.0.0/8`},
		{[]string{"--route", "0.0.0.0/0 via 10.45.0.1"}, "", `--route: "0.0.0.0/0" is the default route`},
		{[]string{"--route", "10.99.0.0/16 via fe80::1"}, "", `--route: "fe80::1" is not an IPv4 address`},
		{[]string{"--method", "off", "--no-default-route"}, "", `--no-default-route: only for methods "dhcp", "static" and "pppoe"`},
		{[]string{"--method", "off", "--route", "239.0.0.0/8"}, "", `--route: only for methods "dhcp", "static" and "pppoe"`},
		{[]string{"--igmp-version", "4"}, "", "--igmp-version: 4 is not 1, 2 or 3"},
		{[]string{"--method", "pppoe", "--user", "u", "--igmp-version", "2"}, "", `--igmp-version: not for method "pppoe"`},
		{[]string{"--ipv6", "slaac"}, "", `--ipv6: "slaac" is not one of "auto", "dhcp", "off"`},
		{[]string{"--dhcpv6", "stateful"}, "", `--ipv6: missing: want "auto", "dhcp" or "off"`},
		{[]string{"--ipv6", "off", "--addr-gen-mode", "random"}, "", `--ipv6: "off" takes no other ipv6 keys`},
		{[]string{"--ipv6", "auto", "--dhcpv6", "always"}, "", `--dhcpv6: "always" is not one of`},
		{[]string{"--ipv6", "dhcp", "--dhcpv6", "off"}, "", `--dhcpv6: "off" with method "dhcp"`},
		{[]string{"--ipv6", "auto", "--addr-gen-mode", "stable-privacy"}, "", `--addr-gen-mode: "stable-privacy" is not "eui64" or "random"`},
		{[]string{"--ipv6", "auto", "--ipv6-route-metric", "-1"}, "", "--ipv6-route-metric: -1 is out of range"},
		{[]string{"--ipv6", "auto", "--no-default-route", "--ipv6-route-metric", "10"}, "", "--ipv6-route-metric: the metric of a default route the uplink does not take"},
		{[]string{"--ipv6", "auto", "--ipv6-vendor-class", "IPTV_STB"}, "", "--enterprise-number: missing"},
		{[]string{"--ipv6", "auto", "--enterprise-number", "3561"}, "", "--enterprise-number: set without vendor_class or vendor_options"},
		{[]string{"--ipv6", "auto", "--enterprise-number", "3561", "--ipv6-vendor-class", "hex:zz"}, "", `--ipv6-vendor-class: "hex:zz" is not hex`},
		{[]string{"--ipv6", "auto", "--dhcpv6", "off", "--enterprise-number", "3561", "--ipv6-vendor-class", "x"}, "", `--ipv6-vendor-class: only with DHCPv6`},
		{[]string{"--ipv6", "auto", "--enterprise-number", "3561", "--ipv6-vendor-option", "70000=x"}, "", `--ipv6-vendor-option: sub-option code "70000" is not a number from 1 to 65535`},
		{[]string{"--ipv6", "auto", "--enterprise-number", "3561", "--ipv6-vendor-option", "1"}, "", `--ipv6-vendor-option "1" is not CODE=VALUE`},
		{[]string{"--ipv6", "auto", "--prefix-delegation", "65"}, "", "--prefix-delegation: 65 is out of range 1..64"},
		{[]string{"--ipv6", "auto", "--dhcpv6", "stateless", "--prefix-delegation", "56"}, "", "--prefix-delegation: needs stateful DHCPv6"},
		{[]string{"--enterprise-number", "IANA"}, "", `invalid argument "IANA" for "--enterprise-number"`},
		{[]string{"--password-stdin"}, "secret\n", `--password-stdin: only for method "pppoe"`},
	}
	for _, tt := range tests {
		args := append([]string{"--parent", "eth0"}, tt.args...)
		sent, stderr, code := uplinkAdd(t, tt.stdin, args...)
		if code != ExitUsage || !strings.Contains(stderr, tt.stderr) || sent != nil {
			t.Errorf("uplink add %q: exit %d, sent %v, stderr %q; want %d, nothing sent and %q", args, code, sent, stderr, ExitUsage, tt.stderr)
		}
	}
}

// TestNetFlagOf: a key of the [network] table names the flag of uplink
// add that sets it, and every key the validation reports for an uplink
// names a flag the net command has.
func TestNetFlagOf(t *testing.T) {
	for _, tt := range []struct{ key, flag string }{
		{"uplink[0].vlan", "--vlan"},
		{"uplink[0].ipv4.user", "--user"},
		{"uplink[0].ipv4.password", "--password-stdin"},
		{"uplink[0].ipv4.options.125", "--option"},
		{"uplink[0].ipv4.options.a[1]", "--option"},
		{"uplink[0].ipv4.dns[1]", "--dns"},
		{"uplink[0].ipv4.search[0]", "--search"},
		{"uplink[0].ipv4.route_metric", "--route-metric"},
		{"uplink[0].ipv4.default_route", "--no-default-route"},
		{"uplink[0].ipv4.routes", "--route"},
		{"uplink[0].ipv4.routes[0].to", "--route"},
		{"uplink[0].ipv4.routes[1].via", "--route"},
		{"uplink[0].ipv4.igmp_version", "--igmp-version"},
		{"uplink[0].ipv6.method", "--ipv6"},
		{"uplink[0].ipv6.dhcpv6", "--dhcpv6"},
		{"uplink[0].ipv6.addr_gen_mode", "--addr-gen-mode"},
		{"uplink[0].ipv6.default_route", "--no-default-route"},
		{"uplink[0].ipv6.route_metric", "--ipv6-route-metric"},
		{"uplink[0].ipv6.enterprise_number", "--enterprise-number"},
		{"uplink[0].ipv6.vendor_class", "--ipv6-vendor-class"},
		{"uplink[0].ipv6.vendor_options.1", "--ipv6-vendor-option"},
		{"uplink[0].ipv6.vendor_options.x.y", "--ipv6-vendor-option"},
		{"uplink[0].ipv6.prefix_delegation", "--prefix-delegation"},
		{"uplink[0].dot1x", "--dot1x-eap"},
		{"uplink[0].dot1x.password", "--password-stdin"},
		{"uplink[0].dot1x.ca_cert", "--dot1x-ca-cert"},
	} {
		if got := netFlagOf(tt.key); got != tt.flag {
			t.Errorf("netFlagOf(%q) = %q, want %q", tt.key, got, tt.flag)
		}
	}

	// Uplinks whose every IPv4 routing and IPv6 key is wrong, as flags
	// can make them: each key reported is one of the flags.
	flags := helpFlags(t, "net")
	ten := 10
	bad := []network.Uplink{
		{Parent: "eth0", IPv4: network.IPv4{Method: "off", DefaultRoute: new(false), RouteMetric: 1, IGMPVersion: 9, Password: "x",
			Routes: []network.RouteConfig{{To: "x"}, {To: "10.0.0.0/8", Via: "y"}}},
			IPv6: network.IPv6{Method: "auto", DHCPv6: "x", AddrGenMode: "x", DefaultRoute: new(false), RouteMetric: -1,
				EnterpriseNumber: -1, VendorClass: "hex:x", VendorOptions: map[string]string{"x": "", "1": "hex:x"}, PrefixDelegation: 99}},
		{Parent: "eth0", Priority: &ten, IPv4: network.IPv4{Method: "pppoe", IGMPVersion: 2},
			IPv6: network.IPv6{Method: "dhcp", DHCPv6: "off", VendorClass: "x", PrefixDelegation: 56}},
		{Parent: "eth0", IPv6: network.IPv6{Method: "x"}},
		{Parent: "eth0", IPv6: network.IPv6{Method: "off", DHCPv6: "stateful"}},
		{Parent: "eth0", IPv6: network.IPv6{DHCPv6: "stateful"}},
	}
	var keys []string
	for _, u := range bad {
		if u.IPv4.Method == "" {
			u.IPv4.Method = "dhcp"
		}
		for _, p := range (network.Config{Uplinks: []network.Uplink{u}}).Problems() {
			keys = append(keys, p.Key)
			if f := netFlagOf(p.Key); !slices.Contains(flags, f) {
				t.Errorf("%s (%s) names %s, which net does not have", p.Key, p.Msg, f)
			}
		}
	}
	// The uplinks above make every key of these fields.
	for _, want := range []string{"ipv4.default_route", "ipv4.routes", "ipv4.routes[0].to", "ipv4.routes[1].via",
		"ipv4.igmp_version", "ipv4.password", "ipv6.method", "ipv6.dhcpv6", "ipv6.addr_gen_mode", "ipv6.route_metric",
		"ipv6.enterprise_number", "ipv6.vendor_class", "ipv6.vendor_options.x", "ipv6.vendor_options.1", "ipv6.prefix_delegation"} {
		if !slices.Contains(keys, "uplink[0]."+want) {
			t.Errorf("no uplink reported %s; keys: %q", want, keys)
		}
	}
}
