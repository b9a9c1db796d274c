package network

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/boxagent/boxagent/internal/names"
)

// Config is the [network] table of the config file.
type Config struct {
	Uplinks []Uplink `toml:"uplink" json:"uplink,omitempty"`
	// PPPD is how pppd runs: "auto" (""), "systemd" or "child" (ChoosePPPD).
	PPPD string `toml:"pppd,omitempty" json:"pppd,omitempty"`
}

// Uplink is one [[network.uplink]]: a wired link, tagged or not, and how
// it gets its IPv4 address.
type Uplink struct {
	// Name is the link's name; empty means "parent.vlan" (or the parent
	// itself when untagged).
	Name   string `toml:"name,omitempty" json:"name,omitempty"`
	Parent string `toml:"parent" json:"parent"`
	// VLAN is the 802.1Q id, 1..4094; nil for an untagged uplink.
	VLAN *int `toml:"vlan,omitempty" json:"vlan,omitempty"`
	// Priority is the 802.1p PCP (0..7) put on every egress frame; nil
	// leaves the kernel's default (0). Only for a VLAN.
	Priority *int `toml:"priority,omitempty" json:"priority,omitempty"`
	// MTU of the link; 0 leaves it as it is.
	MTU int `toml:"mtu,omitempty" json:"mtu,omitempty"`
	// MAC is the link's Ethernet address, "02:00:00:aa:bb:cc", set before
	// the link carries anything (an ISP that binds its lines to the
	// address of the box it replaced); "" leaves the address as it is.
	MAC  string `toml:"mac,omitempty" json:"mac,omitempty"`
	IPv4 IPv4   `toml:"ipv4" json:"ipv4"`
	// Dot1X, when set, authenticates the link with 802.1X before its
	// DHCP client starts.
	Dot1X *Dot1X `toml:"dot1x,omitempty" json:"dot1x,omitempty"`
	// IPv6 is the [network.uplink.ipv6] table (ipv6_config.go).
	IPv6 IPv6 `toml:"ipv6,omitempty" json:"ipv6,omitzero"`
}

// Methods of IPv4.Method.
const (
	MethodDHCP   = "dhcp"
	MethodStatic = "static"
	MethodPPPoE  = "pppoe"
	MethodOff    = "off"
)

// IPv4 is the [network.uplink.ipv4] table.
type IPv4 struct {
	Method string `toml:"method" json:"method"`

	// DHCP (IPoE). VendorClass is option 60, a string or "hex:…".
	// ClientID is option 61: "hex:…" (the exact bytes, type byte
	// included), "mac" (type 1 and the link's MAC; the default) or "none".
	// Options maps a decimal option code to its value, a string or
	// "hex:…", sent as is in every DISCOVER and REQUEST.
	VendorClass string            `toml:"vendor_class,omitempty" json:"vendor_class,omitempty"`
	ClientID    string            `toml:"client_id,omitempty" json:"client_id,omitempty"`
	Options     map[string]string `toml:"options,omitempty" json:"options,omitempty"`
	// RouteMetric is the metric of the uplink's routes (dhcp, static,
	// pppoe): two uplinks that both carry the default route need two.
	RouteMetric int `toml:"route_metric,omitempty" json:"route_metric,omitempty"`
	// DefaultRoute false: the uplink carries no default route, only its
	// prefix, its static routes and those its DHCP server pushes (options
	// 121/249): an IPTV VLAN beside the PPPoE uplink that carries the
	// internet. Absent: true.
	DefaultRoute *bool `toml:"default_route,omitempty" json:"default_route,omitempty"`
	// Routes are static routes on the uplink's link, with its metric.
	Routes []RouteConfig `toml:"routes,omitempty" json:"routes,omitempty"`
	// IGMPVersion, 1 to 3, is the IGMP version the link speaks whatever
	// queries it hears (the kernel's force_igmp_version): for an ISP whose
	// switches snoop only IGMPv2. 0 (absent): the kernel's choice, v3
	// until a querier of an older version is heard.
	IGMPVersion int `toml:"igmp_version,omitempty" json:"igmp_version,omitempty"`

	// Static. Address is "a.b.c.d/len".
	Address string   `toml:"address,omitempty" json:"address,omitempty"`
	Gateway string   `toml:"gateway,omitempty" json:"gateway,omitempty"`
	DNS     []string `toml:"dns,omitempty" json:"dns,omitempty"`
	// Search is the domain search list of a static uplink, merged into
	// resolv.conf's search line as a lease's option 119 is.
	Search []string `toml:"search,omitempty" json:"search,omitempty"`

	// PPPoE.
	User     string `toml:"user,omitempty" json:"user,omitempty"`
	Password string `toml:"password,omitempty" json:"password,omitempty" secret:"true"`
	Service  string `toml:"service,omitempty" json:"service,omitempty"`
	// MTU is pppd's mtu/mru; 0 leaves pppd's default.
	MTU int `toml:"mtu,omitempty" json:"mtu,omitempty"`
}

// FieldError is one problem of the [network] table at a key relative to
// it ("uplink[0].vlan"). It has the two methods the config package looks
// for, so the file's loader reports it at its key and line.
type FieldError struct {
	Key string
	Msg string
}

// Error is the message alone; the config package adds the key.
func (e *FieldError) Error() string { return e.Msg }

// ConfigKey is the key relative to the [network] table.
func (e *FieldError) ConfigKey() string { return e.Key }

// Validate checks the whole table and returns every problem as a
// *FieldError, joined with errors.Join (the config package's Section
// contract); nil when the table is valid.
func (c Config) Validate() error {
	probs := c.Problems()
	errs := make([]error, len(probs))
	for i := range probs {
		errs[i] = &probs[i]
	}
	return errors.Join(errs...)
}

// Problems is every problem of the table, in key order.
func (c Config) Problems() []FieldError {
	ps := pppdProblems(c.PPPD)
	seen := map[string]int{}
	// The kernel keeps one default route per metric: two uplinks with
	// the same one would replace each other's whenever one is applied
	// again (a lease renewal, a redial), and traffic would flip.
	defaultAt := map[int]int{}
	for i, u := range c.Uplinks {
		at := func(key string) string { return fmt.Sprintf("uplink[%d].%s", i, key) }
		add := func(key, format string, args ...any) {
			ps = append(ps, FieldError{Key: at(key), Msg: fmt.Sprintf(format, args...)})
		}
		u.check(add)
		name := u.LinkName()
		nameKey := "name"
		if u.Name == "" {
			nameKey = "parent"
		}
		if j, ok := seen[name]; ok && name != "" {
			add(nameKey, "link %q is also uplink[%d]", name, j)
		} else {
			seen[name] = i
		}
		if u.IPv4.CarriesDefaultRoute() {
			if j, ok := defaultAt[u.IPv4.RouteMetric]; ok {
				add("ipv4.route_metric", "uplink[%d] carries the default route at metric %d too: they would replace each other's; set default_route = false on the one that must not carry it (an IPTV VLAN), or give them different route_metric", j, u.IPv4.RouteMetric)
			} else {
				defaultAt[u.IPv4.RouteMetric] = i
			}
		}
	}
	return ps
}

// CarriesDefaultRoute reports whether the uplink puts a default route in
// the kernel when it is up: a static one with a gateway, any DHCP or PPPoE
// one, unless default_route = false.
func (v IPv4) CarriesDefaultRoute() bool {
	if v.DefaultRoute != nil && !*v.DefaultRoute {
		return false
	}
	switch v.Method {
	case MethodDHCP, MethodPPPoE:
		return true
	case MethodStatic:
		return v.Gateway != ""
	}
	return false
}

// LinkName is the name of the uplink's link: Name, else "parent.vlan",
// else the parent.
func (u Uplink) LinkName() string {
	switch {
	case u.Name != "":
		return u.Name
	case u.VLAN != nil:
		return fmt.Sprintf("%s.%d", u.Parent, *u.VLAN)
	}
	return u.Parent
}

// HardwareAddr is MAC parsed: a unicast 48-bit address written
// aa:bb:cc:dd:ee:ff; nil when MAC is empty.
func (u Uplink) HardwareAddr() (net.HardwareAddr, error) {
	if u.MAC == "" {
		return nil, nil
	}
	hw, err := net.ParseMAC(u.MAC)
	switch {
	case err != nil || len(hw) != 6 || len(u.MAC) != 17 || u.MAC[2] != ':':
		return nil, fmt.Errorf("%q is not a MAC address like 02:00:00:aa:bb:cc", u.MAC)
	case hw[0]&1 != 0:
		return nil, fmt.Errorf("%s is a multicast address: a link's own address is unicast", u.MAC)
	case bytes.Equal(hw, make(net.HardwareAddr, 6)):
		return nil, fmt.Errorf("%s is all zeros", u.MAC)
	}
	return hw, nil
}

type addFunc func(key, format string, args ...any)

func (u Uplink) check(add addFunc) {
	if u.Parent == "" {
		add("parent", "missing: name the link the uplink runs on (\"eth0\")")
	} else if msg := names.LinkNameProblem(u.Parent); msg != "" {
		add("parent", "%s", msg)
	}
	// The link's own name, unless it is the parent's, checked above.
	if u.Name != "" || u.Parent != "" && u.VLAN != nil {
		key := "name"
		if u.Name == "" {
			key = "parent"
		}
		if msg := names.LinkNameProblem(u.LinkName()); msg != "" {
			add(key, "%s", msg)
		}
	}
	if u.VLAN != nil && (*u.VLAN < 1 || *u.VLAN > 4094) {
		add("vlan", "%d is out of range 1..4094", *u.VLAN)
	}
	if u.Priority != nil {
		switch {
		case *u.Priority < 0 || *u.Priority > 7:
			add("priority", "%d is out of range 0..7", *u.Priority)
		case u.VLAN == nil:
			add("priority", "needs a vlan: 802.1p priority travels in the VLAN tag")
		}
	}
	if u.MTU != 0 && (u.MTU < 68 || u.MTU > 65535) {
		add("mtu", "%d is out of range 68..65535", u.MTU)
	}
	if u.MAC != "" {
		if _, err := u.HardwareAddr(); err != nil {
			add("mac", "%v", err)
		}
	}
	u.IPv4.check(func(key, format string, args ...any) { add("ipv4."+key, format, args...) })
	if u.Dot1X != nil {
		if u.IPv4.Method != MethodDHCP {
			add("dot1x", `only for ipv4.method "dhcp": the DHCP client waits for the port to be authorized`)
		}
		u.Dot1X.check(func(key, format string, args ...any) { add("dot1x."+key, format, args...) })
	}
	u.checkIPv6(add)
}

// Owned option codes: the client sets them, from a field or itself.
var ownedOptions = map[int]string{
	50: "the client (requested address)",
	53: "the client (message type)",
	54: "the client (server identifier)",
	55: "the client (parameter request list)",
	57: "the client (maximum message size)",
	60: "vendor_class",
	61: "client_id",
}

func (v IPv4) check(add addFunc) {
	only := func(key, method string, set bool) {
		if set && v.Method != method {
			add(key, "only for method %q", method)
		}
	}
	switch v.Method {
	case MethodDHCP, MethodStatic, MethodPPPoE, MethodOff:
	case "":
		add("method", `missing: want "dhcp", "static", "pppoe" or "off"`)
	default:
		add("method", `%q is not one of "dhcp", "static", "pppoe", "off"`, v.Method)
	}
	only("vendor_class", MethodDHCP, v.VendorClass != "")
	only("client_id", MethodDHCP, v.ClientID != "")
	only("options", MethodDHCP, len(v.Options) > 0)
	only("address", MethodStatic, v.Address != "")
	only("gateway", MethodStatic, v.Gateway != "")
	only("dns", MethodStatic, len(v.DNS) > 0)
	only("search", MethodStatic, len(v.Search) > 0)
	only("user", MethodPPPoE, v.User != "")
	only("password", MethodPPPoE, v.Password != "")
	only("service", MethodPPPoE, v.Service != "")
	only("mtu", MethodPPPoE, v.MTU != 0)
	if v.Method == MethodOff && v.RouteMetric != 0 {
		add("route_metric", "only for methods \"dhcp\", \"static\" and \"pppoe\"")
	}
	if v.Method == MethodOff && v.DefaultRoute != nil {
		add("default_route", "only for methods \"dhcp\", \"static\" and \"pppoe\"")
	}
	if v.Method == MethodOff && len(v.Routes) > 0 {
		add("routes", "only for methods \"dhcp\", \"static\" and \"pppoe\"")
	}
	switch {
	case v.IGMPVersion < 0 || v.IGMPVersion > 3:
		add("igmp_version", "%d is not 1, 2 or 3", v.IGMPVersion)
	case v.IGMPVersion != 0 && v.Method == MethodPPPoE:
		add("igmp_version", "not for method \"pppoe\": its IGMP leaves by the PPP link pppd makes; set it on the uplink that carries multicast")
	}
	for i, r := range v.Routes {
		if _, err := r.parse(); err != nil {
			var re *routeError
			errors.As(err, &re)
			add(fmt.Sprintf("routes[%d].%s", i, re.Field), "%s", re.Msg)
		}
	}

	if v.VendorClass != "" {
		if b, err := ParseOptionValue(v.VendorClass); err != nil {
			add("vendor_class", "%v", err)
		} else if len(b) == 0 {
			add("vendor_class", "empty: leave the key out to send no option 60")
		}
	}
	if _, err := parseClientID(v.ClientID); err != nil {
		add("client_id", "%v", err)
	}
	for _, code := range slices.Sorted(maps.Keys(v.Options)) {
		key := "options." + code
		n, err := strconv.Atoi(code)
		switch {
		case err != nil || n < 1 || n > 254:
			add(key, "option code %q is not a number from 1 to 254", code)
			continue
		case ownedOptions[n] != "":
			add(key, "option %d is set by %s", n, ownedOptions[n])
			continue
		}
		if _, err := ParseOptionValue(v.Options[code]); err != nil {
			add(key, "%v", err)
		}
	}
	if v.RouteMetric < 0 || int64(v.RouteMetric) > math.MaxUint32 {
		add("route_metric", "%d is out of range 0..4294967295", v.RouteMetric)
	}

	for i, d := range v.Search {
		if !validSearchDomain(d) {
			add(fmt.Sprintf("search[%d]", i), "%q is not a domain name (letters, digits, '-' and '_' in dot-separated labels of at most 63, at most 253 in all)", d)
		}
	}
	if v.Method == MethodStatic && v.Address == "" {
		add("address", `missing: method "static" needs an address ("192.0.2.10/24")`)
	}
	if v.Address != "" {
		if p, err := netip.ParsePrefix(v.Address); err != nil || !p.Addr().Is4() {
			add("address", "%q is not an IPv4 address with a prefix length (\"192.0.2.10/24\")", v.Address)
		}
	}
	if v.Gateway != "" {
		a, err := netip.ParseAddr(v.Gateway)
		p, perr := netip.ParsePrefix(v.Address)
		switch {
		case err != nil || !a.Is4():
			add("gateway", "%q is not an IPv4 address", v.Gateway)
		case perr == nil && p.Addr().Is4() && !p.Masked().Contains(a):
			add("gateway", "%s is outside the uplink's subnet %s: the kernel refuses a route through it", a, p.Masked())
		}
	}
	for i, d := range v.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			add(fmt.Sprintf("dns[%d]", i), "%q is not an IP address", d)
		}
	}

	if v.Method == MethodPPPoE && v.User == "" {
		add("user", `missing: method "pppoe" needs a user`)
	}
	if v.MTU != 0 && (v.MTU < 128 || v.MTU > 1500) {
		add("mtu", "%d is out of range 128..1500", v.MTU)
	}
}

// ParseOptionValue decodes a DHCP option value of the config file: "hex:"
// and hex digits (pairs may be separated by ':'), or else the string's
// own bytes. A value holds at most 255 bytes.
func ParseOptionValue(s string) ([]byte, error) {
	var b []byte
	if h, ok := strings.CutPrefix(s, "hex:"); ok {
		digits := strings.ReplaceAll(h, ":", "")
		if digits == "" {
			return nil, fmt.Errorf("%q holds no hex digits", s)
		}
		var err error
		if b, err = hex.DecodeString(digits); err != nil {
			return nil, fmt.Errorf("%q is not hex: want \"hex:\" and pairs of digits 0-9, a-f", s)
		}
	} else {
		b = []byte(s)
	}
	if len(b) > 255 {
		return nil, fmt.Errorf("value is %d bytes long; a DHCP option holds at most 255", len(b))
	}
	return b, nil
}

// parseClientID decodes client_id; "" is "mac". It returns nil for
// "none" and for "mac" (the client fills in the MAC), and the bytes
// for "hex:…".
func parseClientID(s string) ([]byte, error) {
	switch s {
	case "", "mac", "none":
		return nil, nil
	}
	if !strings.HasPrefix(s, "hex:") {
		return nil, fmt.Errorf(`%q is not "hex:…", "mac" or "none"`, s)
	}
	b, err := ParseOptionValue(s)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 {
		return nil, fmt.Errorf("%q is %d byte long; a client identifier has at least 2 (type and value)", s, len(b))
	}
	return b, nil
}
