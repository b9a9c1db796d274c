package network

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Methods of IPv6.Method. The names are NetworkManager's (ipv6.method):
// "auto" is router advertisements (the kernel's SLAAC) with DHCPv6 as
// their M and O flags ask; "dhcp" is DHCPv6 for the address whatever the
// flags (the RA still gives the default route and RDNSS); "off" is
// nmcli's "disabled": no IPv6 on the link at all. Absent (nmcli's
// "ignore"): the agent leaves the link's IPv6 settings as the kernel has
// them.
const (
	IPv6Auto = "auto"
	IPv6DHCP = "dhcp"
	IPv6Off  = "off"
)

// DHCPv6 modes (IPv6.DHCPv6), systemd-networkd's names for
// [IPv6AcceptRA] DHCPv6Client=: "" or "auto" follows the RA's M (stateful:
// an address) and O (stateless: DNS only) flags; "stateful" and
// "stateless" do not wait for them; "off" runs no DHCPv6 client.
const (
	DHCPv6Auto      = "auto"
	DHCPv6Stateful  = "stateful"
	DHCPv6Stateless = "stateless"
	DHCPv6Off       = "off"
)

// IPv6 is the [network.uplink.ipv6] table.
type IPv6 struct {
	Method string `toml:"method,omitempty" json:"method,omitempty"`
	// DHCPv6 is when the DHCPv6 client runs (see DHCPv6Auto); "" is
	// "auto", or "stateful" for method "dhcp".
	DHCPv6 string `toml:"dhcpv6,omitempty" json:"dhcpv6,omitempty"`
	// AddrGenMode is how the kernel makes the SLAAC and link-local
	// addresses' interface identifiers: "eui64" (from the MAC) or
	// "random" (a random secret per link, RFC 7217's scheme); "" leaves
	// the kernel's (eui64).
	AddrGenMode string `toml:"addr_gen_mode,omitempty" json:"addr_gen_mode,omitempty"`
	// DefaultRoute false: the router's default route is not taken
	// (accept_ra_defrtr = 0), the IPTV VLAN beside the internet uplink.
	// Absent: true.
	DefaultRoute *bool `toml:"default_route,omitempty" json:"default_route,omitempty"`
	// RouteMetric is the metric of the RA's default route
	// (ra_defrtr_metric); 0 leaves the kernel's 1024.
	RouteMetric int `toml:"route_metric,omitempty" json:"route_metric,omitempty"`

	// EnterpriseNumber is the IANA enterprise number of vendor_class and
	// vendor_options (options 16 and 17 carry one); required with them.
	EnterpriseNumber int `toml:"enterprise_number,omitempty" json:"enterprise_number,omitempty"`
	// VendorClass is DHCPv6 option 16's data (DHCPv4's option 60 for
	// IPv6), a string or "hex:…".
	VendorClass string `toml:"vendor_class,omitempty" json:"vendor_class,omitempty"`
	// VendorOptions are option 17's sub-options: a decimal code (1 to
	// 65535) to a string or "hex:…".
	VendorOptions map[string]string `toml:"vendor_options,omitempty" json:"vendor_options,omitempty"`
	// PrefixDelegation is the prefix length asked for with IA_PD (a
	// hint: the server decides), 1 to 64; 0 asks for none.
	PrefixDelegation int `toml:"prefix_delegation,omitempty" json:"prefix_delegation,omitempty"`
}

// Configured says whether the table asks the agent to do anything.
func (v IPv6) Configured() bool { return v.Method != "" }

// dhcpv6Mode is DHCPv6 with its default filled in.
func (v IPv6) dhcpv6Mode() string {
	switch {
	case v.DHCPv6 != "":
		return v.DHCPv6
	case v.Method == IPv6DHCP:
		return DHCPv6Stateful
	}
	return DHCPv6Auto
}

func (v IPv6) check(add addFunc) {
	set := v.DHCPv6 != "" || v.AddrGenMode != "" || v.DefaultRoute != nil || v.RouteMetric != 0 ||
		v.EnterpriseNumber != 0 || v.VendorClass != "" || len(v.VendorOptions) > 0 || v.PrefixDelegation != 0
	switch v.Method {
	case IPv6Auto, IPv6DHCP:
	case "":
		if set {
			add("method", `missing: want "auto", "dhcp" or "off" (the other ipv6 keys need one)`)
		}
		return
	case IPv6Off:
		if set {
			add("method", `"off" takes no other ipv6 keys`)
		}
		return
	default:
		add("method", `%q is not one of "auto", "dhcp", "off"`, v.Method)
		return
	}
	switch v.DHCPv6 {
	case "", DHCPv6Auto, DHCPv6Stateful, DHCPv6Stateless:
	case DHCPv6Off:
		if v.Method == IPv6DHCP {
			add("dhcpv6", `"off" with method "dhcp": nothing would give the address; use method "auto"`)
		}
	default:
		add("dhcpv6", `%q is not one of "auto", "stateful", "stateless", "off"`, v.DHCPv6)
	}
	dhcp := v.dhcpv6Mode() != DHCPv6Off
	switch v.AddrGenMode {
	case "", "eui64", "random":
	default:
		add("addr_gen_mode", `%q is not "eui64" or "random"`, v.AddrGenMode)
	}
	if v.RouteMetric < 0 || int64(v.RouteMetric) > 0xffffffff {
		add("route_metric", "%d is out of range 0..4294967295", v.RouteMetric)
	}
	if v.DefaultRoute != nil && !*v.DefaultRoute && v.RouteMetric != 0 {
		add("route_metric", "the metric of a default route the uplink does not take (default_route = false)")
	}
	vendor := v.VendorClass != "" || len(v.VendorOptions) > 0
	switch {
	case v.EnterpriseNumber < 0 || int64(v.EnterpriseNumber) > 0xffffffff:
		add("enterprise_number", "%d is out of range 0..4294967295", v.EnterpriseNumber)
	case v.EnterpriseNumber == 0 && vendor:
		add("enterprise_number", "missing: options 16 and 17 carry the vendor's IANA enterprise number (your ISP's documents name it)")
	case v.EnterpriseNumber != 0 && !vendor:
		add("enterprise_number", "set without vendor_class or vendor_options")
	}
	if !dhcp && vendor {
		add("vendor_class", `only with DHCPv6 (dhcpv6 is "off")`)
	}
	if v.VendorClass != "" {
		if b, err := ParseOptionValue(v.VendorClass); err != nil {
			add("vendor_class", "%v", err)
		} else if len(b) == 0 {
			add("vendor_class", "empty: leave the key out to send no option 16")
		}
	}
	for _, code := range slices.Sorted(maps.Keys(v.VendorOptions)) {
		key := "vendor_options." + code
		if n, err := strconv.Atoi(code); err != nil || n < 1 || n > 65535 {
			add(key, "sub-option code %q is not a number from 1 to 65535", code)
			continue
		}
		if _, err := ParseOptionValue(v.VendorOptions[code]); err != nil {
			add(key, "%v", err)
		}
	}
	switch p := v.PrefixDelegation; {
	case p < 0 || p > 64:
		add("prefix_delegation", "%d is out of range 1..64 (a prefix length; 0 asks for none)", p)
	case p != 0 && (!dhcp || v.dhcpv6Mode() == DHCPv6Stateless):
		add("prefix_delegation", "needs stateful DHCPv6 (dhcpv6 = %q asks for no lease)", v.dhcpv6Mode())
	}
}

// vendorOptions are VendorOptions decoded, by code; the config was
// validated.
func (v IPv6) vendorOptions() (map[uint16][]byte, error) {
	out := map[uint16][]byte{}
	for code, val := range v.VendorOptions {
		n, err := strconv.Atoi(code)
		if err != nil {
			return nil, fmt.Errorf("cannot use vendor option %q: %w", code, err)
		}
		b, err := ParseOptionValue(val)
		if err != nil {
			return nil, fmt.Errorf("cannot use vendor option %d: %w", n, err)
		}
		out[uint16(n)] = b
	}
	return out, nil
}

func (u Uplink) checkIPv6(add addFunc) {
	u.IPv6.check(func(key, format string, args ...any) { add("ipv6."+key, format, args...) })
}
