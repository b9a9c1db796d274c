package network

import (
	"reflect"
	"testing"
)

func TestValidateIPv6(t *testing.T) {
	up := func(v IPv6) Config {
		return Config{Uplinks: []Uplink{{Parent: "eth0", IPv4: IPv4{Method: MethodDHCP}, IPv6: v}}}
	}
	tests := []struct {
		name string
		cfg  Config
		want []FieldError
	}{
		{"absent", up(IPv6{}), nil},
		{"auto", up(IPv6{Method: IPv6Auto}), nil},
		{"off", up(IPv6{Method: IPv6Off}), nil},
		{"iptv", up(IPv6{Method: IPv6Auto, DHCPv6: DHCPv6Stateful, EnterpriseNumber: 3561, VendorClass: "IPTV_STB",
			VendorOptions: map[string]string{"1": "hex:0a0b"}, PrefixDelegation: 56, AddrGenMode: "random", RouteMetric: 100}), nil},
		{"dhcp", up(IPv6{Method: IPv6DHCP, PrefixDelegation: 64}), nil},
		{"keys without method", up(IPv6{DHCPv6: DHCPv6Stateless}), []FieldError{
			{"uplink[0].ipv6.method", `missing: want "auto", "dhcp" or "off" (the other ipv6 keys need one)`},
		}},
		{"off with keys", up(IPv6{Method: IPv6Off, PrefixDelegation: 64}), []FieldError{
			{"uplink[0].ipv6.method", `"off" takes no other ipv6 keys`},
		}},
		{"bad values", up(IPv6{Method: "slaac", DHCPv6: "yes"}), []FieldError{
			{"uplink[0].ipv6.method", `"slaac" is not one of "auto", "dhcp", "off"`},
		}},
		{"bad keys", up(IPv6{Method: IPv6Auto, DHCPv6: "yes", AddrGenMode: "stable", RouteMetric: -1,
			VendorClass: "hex:zz", VendorOptions: map[string]string{"0": "x", "7": "hex:1"}, PrefixDelegation: 65}), []FieldError{
			{"uplink[0].ipv6.dhcpv6", `"yes" is not one of "auto", "stateful", "stateless", "off"`},
			{"uplink[0].ipv6.addr_gen_mode", `"stable" is not "eui64" or "random"`},
			{"uplink[0].ipv6.route_metric", "-1 is out of range 0..4294967295"},
			{"uplink[0].ipv6.enterprise_number", "missing: options 16 and 17 carry the vendor's IANA enterprise number (your ISP's documents name it)"},
			{"uplink[0].ipv6.vendor_class", `"hex:zz" is not hex: want "hex:" and pairs of digits 0-9, a-f`},
			{"uplink[0].ipv6.vendor_options.0", `sub-option code "0" is not a number from 1 to 65535`},
			{"uplink[0].ipv6.vendor_options.7", `"hex:1" is not hex: want "hex:" and pairs of digits 0-9, a-f`},
			{"uplink[0].ipv6.prefix_delegation", "65 is out of range 1..64 (a prefix length; 0 asks for none)"},
		}},
		{"pd without a lease", up(IPv6{Method: IPv6Auto, DHCPv6: DHCPv6Stateless, PrefixDelegation: 64, EnterpriseNumber: 9}), []FieldError{
			{"uplink[0].ipv6.enterprise_number", "set without vendor_class or vendor_options"},
			{"uplink[0].ipv6.prefix_delegation", `needs stateful DHCPv6 (dhcpv6 = "stateless" asks for no lease)`},
		}},
		{"dhcp without dhcpv6", up(IPv6{Method: IPv6DHCP, DHCPv6: DHCPv6Off, DefaultRoute: ptr(false), RouteMetric: 5}), []FieldError{
			{"uplink[0].ipv6.dhcpv6", `"off" with method "dhcp": nothing would give the address; use method "auto"`},
			{"uplink[0].ipv6.route_metric", "the metric of a default route the uplink does not take (default_route = false)"},
		}},
		{"pppoe", Config{Uplinks: []Uplink{{Parent: "eth0", IPv4: IPv4{Method: MethodPPPoE, User: "u"}, IPv6: IPv6{Method: IPv6Auto, PrefixDelegation: 56}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Problems(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
