package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

func ptr[T any](v T) *T { return &v }

func dhcpUplink() Uplink {
	return Uplink{Name: "iptv", Parent: "eth0", VLAN: ptr(45), Priority: ptr(6), MTU: 1500, IPv4: IPv4{
		Method: MethodDHCP, VendorClass: "IPTV_STB", ClientID: "mac",
		Options: map[string]string{"125": "hex:00000de9"}, RouteMetric: 100,
	}}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []FieldError
	}{
		{"empty", Config{}, nil},
		{"dhcp", Config{Uplinks: []Uplink{dhcpUplink()}}, nil},
		{"static and pppoe", Config{Uplinks: []Uplink{
			{Parent: "eth1", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.10/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.1", "2001:db8::1"}}},
			{Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "u", Password: "p", Service: "inet", MTU: 1492, RouteMetric: 50}},
			{Parent: "eth2", IPv4: IPv4{Method: MethodOff}},
		}}, nil},
		{"iptv beside internet", Config{Uplinks: []Uplink{
			{Name: "internet", Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "u", Password: "p"}},
			{Name: "iptv", Parent: "eth0", VLAN: ptr(45), IPv4: IPv4{Method: MethodDHCP, DefaultRoute: ptr(false),
				Routes: []RouteConfig{{To: "10.200.0.0/16", Via: "10.45.0.1"}, {To: "239.0.0.0/8"}}, IGMPVersion: 2}},
		}}, nil},
		{"igmp_version", Config{Uplinks: []Uplink{
			{Name: "iptv", Parent: "eth0", VLAN: ptr(45), IPv4: IPv4{Method: MethodDHCP, DefaultRoute: ptr(false), IGMPVersion: 4}},
			{Name: "internet", Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "u", IGMPVersion: 2}},
			{Name: "lan", Parent: "eth1", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.10/24", IGMPVersion: -1}},
			{Name: "tv", Parent: "eth2", IPv4: IPv4{Method: MethodOff, IGMPVersion: 1}},
		}}, []FieldError{
			{"uplink[0].ipv4.igmp_version", "4 is not 1, 2 or 3"},
			{"uplink[1].ipv4.igmp_version", `not for method "pppoe": its IGMP leaves by the PPP link pppd makes; set it on the uplink that carries multicast`},
			{"uplink[2].ipv4.igmp_version", "-1 is not 1, 2 or 3"},
		}},
		{"two default routes", Config{Uplinks: []Uplink{
			{Name: "internet", Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "u", Password: "p"}},
			{Name: "iptv", Parent: "eth0", VLAN: ptr(45), IPv4: IPv4{Method: MethodDHCP}},
			{Name: "lan", Parent: "eth1", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.10/24"}},
			{Name: "backup", Parent: "eth2", IPv4: IPv4{Method: MethodDHCP, RouteMetric: 100}},
		}}, []FieldError{
			{"uplink[1].ipv4.route_metric", "uplink[0] carries the default route at metric 0 too: they would replace each other's; set default_route = false on the one that must not carry it (an IPTV VLAN), or give them different route_metric"},
		}},
		{"routes", Config{Uplinks: []Uplink{
			{Parent: "eth0", IPv4: IPv4{Method: MethodDHCP, Routes: []RouteConfig{
				{To: "10.0.0.1/8"}, {To: "0.0.0.0/0", Via: "10.0.0.1"}, {To: "fd00::/8"}, {To: "10.0.0.0/8", Via: "nowhere"},
			}}},
			{Parent: "eth1", IPv4: IPv4{Method: MethodOff, DefaultRoute: ptr(false), Routes: []RouteConfig{{To: "10.0.0.0/8"}}}},
		}}, []FieldError{
			{"uplink[0].ipv4.routes[0].to", `"10.0.0.1/8" has host bits set: write 10.0.0.0/8`},
			{"uplink[0].ipv4.routes[1].to", `"0.0.0.0/0" is the default route: the uplink's gateway and default_route say that`},
			{"uplink[0].ipv4.routes[2].to", `"fd00::/8" is not an IPv4 prefix (a.b.c.d/len)`},
			{"uplink[0].ipv4.routes[3].via", `"nowhere" is not an IPv4 address`},
			{"uplink[1].ipv4.default_route", `only for methods "dhcp", "static" and "pppoe"`},
			{"uplink[1].ipv4.routes", `only for methods "dhcp", "static" and "pppoe"`},
		}},
		{"vlan 0 and 4095", Config{Uplinks: []Uplink{
			{Parent: "eth0", VLAN: ptr(0), IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth0", VLAN: ptr(4095), IPv4: IPv4{Method: MethodOff}},
		}}, []FieldError{
			{"uplink[0].vlan", "0 is out of range 1..4094"},
			{"uplink[1].vlan", "4095 is out of range 1..4094"},
		}},
		{"names", Config{Uplinks: []Uplink{
			{Name: "iptv-uplink-long", Parent: "eth0", IPv4: IPv4{Method: MethodOff}},
			{Name: "iptv", Parent: "eth0", VLAN: ptr(45), IPv4: IPv4{Method: MethodOff}},
			{Name: "iptv", Parent: "eth0", VLAN: ptr(46), IPv4: IPv4{Method: MethodOff}},
			{Parent: "enx001122334455", VLAN: ptr(100), IPv4: IPv4{Method: MethodOff}},
			{Name: "a b", IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth0", IPv4: IPv4{Method: MethodOff}},
			{Name: "eth0.45", Parent: "eth0", IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth0", VLAN: ptr(45), IPv4: IPv4{Method: MethodOff}},
			{Name: "up\x00link", Parent: "eth0", IPv4: IPv4{Method: MethodOff}},
			{Name: "up\x1b[2J", Parent: "eth0", IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth\xff", IPv4: IPv4{Method: MethodOff}},
		}}, []FieldError{
			{"uplink[0].name", `link name "iptv-uplink-long" is 16 bytes long; Linux allows at most 15`},
			{"uplink[2].name", `link "iptv" is also uplink[1]`},
			{"uplink[3].parent", `link name "enx001122334455.100" is 19 bytes long; Linux allows at most 15`},
			{"uplink[4].parent", `missing: name the link the uplink runs on ("eth0")`},
			{"uplink[4].name", `link name "a b" holds '/', ':' or a space`},
			{"uplink[7].parent", `link "eth0.45" is also uplink[6]`},
			{"uplink[8].name", `link name "up\x00link" holds a NUL, a control character or bytes that are not printable text`},
			{"uplink[9].name", `link name "up\x1b[2J" holds a NUL, a control character or bytes that are not printable text`},
			{"uplink[10].parent", `link name "eth\xff" holds a NUL, a control character or bytes that are not printable text`},
		}},
		{"priority", Config{Uplinks: []Uplink{
			{Parent: "eth0", VLAN: ptr(45), Priority: ptr(8), MTU: 20, IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth1", Priority: ptr(6), IPv4: IPv4{Method: MethodOff}},
		}}, []FieldError{
			{"uplink[0].priority", "8 is out of range 0..7"},
			{"uplink[0].mtu", "20 is out of range 68..65535"},
			{"uplink[1].priority", "needs a vlan: 802.1p priority travels in the VLAN tag"},
		}},
		{"mac", Config{Uplinks: []Uplink{
			{Parent: "eth0", MAC: "02:00:00:aa:bb:cc", IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth1", MAC: "0200.00aa.bbcc", IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth2", MAC: "01:00:5e:00:00:01", IPv4: IPv4{Method: MethodOff}},
			{Parent: "eth3", MAC: "00:00:00:00:00:00", IPv4: IPv4{Method: MethodOff}},
		}}, []FieldError{
			{"uplink[1].mac", `"0200.00aa.bbcc" is not a MAC address like 02:00:00:aa:bb:cc`},
			{"uplink[2].mac", "01:00:5e:00:00:01 is a multicast address: a link's own address is unicast"},
			{"uplink[3].mac", "00:00:00:00:00:00 is all zeros"},
		}},
		{"options", Config{Uplinks: []Uplink{{Parent: "eth0", IPv4: IPv4{
			Method: MethodDHCP, VendorClass: "hex:zz", ClientID: "01:02",
			Options: map[string]string{
				"0": "x", "255": "x", "abc": "x", "53": "x", "55": "x", "57": "x", "60": "x", "61": "x",
				"125": "hex:0g", "43": "hex:", "77": strings.Repeat("x", 256), "12": "hex:01:02",
			},
			RouteMetric: -1,
		}}}}, []FieldError{
			{"uplink[0].ipv4.vendor_class", `"hex:zz" is not hex: want "hex:" and pairs of digits 0-9, a-f`},
			{"uplink[0].ipv4.client_id", `"01:02" is not "hex:…", "mac" or "none"`},
			{"uplink[0].ipv4.options.0", `option code "0" is not a number from 1 to 254`},
			{"uplink[0].ipv4.options.125", `"hex:0g" is not hex: want "hex:" and pairs of digits 0-9, a-f`},
			{"uplink[0].ipv4.options.255", `option code "255" is not a number from 1 to 254`},
			{"uplink[0].ipv4.options.43", `"hex:" holds no hex digits`},
			{"uplink[0].ipv4.options.53", "option 53 is set by the client (message type)"},
			{"uplink[0].ipv4.options.55", "option 55 is set by the client (parameter request list)"},
			{"uplink[0].ipv4.options.57", "option 57 is set by the client (maximum message size)"},
			{"uplink[0].ipv4.options.60", "option 60 is set by vendor_class"},
			{"uplink[0].ipv4.options.61", "option 61 is set by client_id"},
			{"uplink[0].ipv4.options.77", "value is 256 bytes long; a DHCP option holds at most 255"},
			{"uplink[0].ipv4.options.abc", `option code "abc" is not a number from 1 to 254`},
			{"uplink[0].ipv4.route_metric", "-1 is out of range 0..4294967295"},
		}},
		{"client id", Config{Uplinks: []Uplink{
			{Parent: "eth0", IPv4: IPv4{Method: MethodDHCP, ClientID: "hex:01"}},
			{Parent: "eth1", IPv4: IPv4{Method: MethodDHCP, ClientID: "none", VendorClass: "hex:", RouteMetric: 10}},
		}}, []FieldError{
			{"uplink[0].ipv4.client_id", `"hex:01" is 1 byte long; a client identifier has at least 2 (type and value)`},
			{"uplink[1].ipv4.vendor_class", `"hex:" holds no hex digits`},
		}},
		{"methods", Config{Uplinks: []Uplink{
			{Parent: "eth0", IPv4: IPv4{}},
			{Parent: "eth1", IPv4: IPv4{Method: "ipoe"}},
			{Parent: "eth2", IPv4: IPv4{Method: MethodPPPoE, Password: "secret", MTU: 1600}},
			{Parent: "eth3", IPv4: IPv4{Method: MethodStatic, Gateway: "fe80::1", DNS: []string{"dns.example"}, RouteMetric: 10}},
			{Parent: "eth4", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.10"}},
			{Parent: "eth5", IPv4: IPv4{Method: MethodStatic, Address: "192.0.2.10/24", VendorClass: "x", User: "u"}},
			{Parent: "eth6", IPv4: IPv4{Method: MethodOff, RouteMetric: 5}},
		}}, []FieldError{
			{"uplink[0].ipv4.method", `missing: want "dhcp", "static", "pppoe" or "off"`},
			{"uplink[1].ipv4.method", `"ipoe" is not one of "dhcp", "static", "pppoe", "off"`},
			{"uplink[2].ipv4.user", `missing: method "pppoe" needs a user`},
			{"uplink[2].ipv4.mtu", "1600 is out of range 128..1500"},
			{"uplink[3].ipv4.address", `missing: method "static" needs an address ("192.0.2.10/24")`},
			{"uplink[3].ipv4.gateway", `"fe80::1" is not an IPv4 address`},
			{"uplink[3].ipv4.dns[0]", `"dns.example" is not an IP address`},
			{"uplink[4].ipv4.address", `"192.0.2.10" is not an IPv4 address with a prefix length ("192.0.2.10/24")`},
			{"uplink[5].ipv4.vendor_class", `only for method "dhcp"`},
			{"uplink[5].ipv4.user", `only for method "pppoe"`},
			{"uplink[6].ipv4.route_metric", `only for methods "dhcp", "static" and "pppoe"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Problems()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Problems():\n%s\nwant:\n%s", show(got), show(tt.want))
			}
			err := tt.cfg.Validate()
			if (err == nil) != (len(tt.want) == 0) {
				t.Fatalf("Validate() = %v", err)
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.ConfigKey() == "" || fe.Error() == "" {
					t.Errorf("Validate() = %v, want *FieldError with key and message", err)
				}
			}
		})
	}
}

func show(ps []FieldError) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\t" + p.Key + ": " + p.Msg + "\n")
	}
	return b.String()
}

func TestConfigTOML(t *testing.T) {
	doc := `
[[uplink]]
name = "iptv"
parent = "eth0"
vlan = 45
priority = 6
mtu = 1500
[uplink.ipv4]
method = "dhcp"
vendor_class = "IPTV_STB"
client_id = "mac"
options = { 125 = "hex:00000de9" }
route_metric = 100
`
	var c Config
	dec := toml.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if want := (Config{Uplinks: []Uplink{dhcpUplink()}}); !reflect.DeepEqual(c, want) {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
	// The JSON form (API, snapshots) keeps the password, for the config
	// package to fingerprint through the secret tag.
	p := Config{Uplinks: []Uplink{{Parent: "eth0", IPv4: IPv4{Method: MethodPPPoE, User: "u", Password: "pw"}}}}
	b, _ := json.Marshal(p)
	if !bytes.Contains(b, []byte(`"password":"pw"`)) {
		t.Errorf("JSON %s has no password", b)
	}
	f, _ := reflect.TypeFor[IPv4]().FieldByName("Password")
	if f.Tag.Get("secret") != "true" {
		t.Errorf("IPv4.Password is not tagged secret")
	}
}

func TestDHCPConfigFor(t *testing.T) {
	c, err := DHCPConfigFor(dhcpUplink(), "/run/boxagent/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := DHCPConfig{
		Link: "iptv", VendorClass: []byte("IPTV_STB"), ClientIDMAC: true,
		Options: map[uint8][]byte{125: {0, 0, 0x0d, 0xe9}}, RouteMetric: 100, ResolvConf: "/run/boxagent/resolv.conf",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DHCPConfigFor = %+v, want %+v", c, want)
	}
	u := dhcpUplink()
	u.IPv4.ClientID = "none"
	if c, _ := DHCPConfigFor(u, ""); c.ClientIDMAC || c.ClientID != nil {
		t.Errorf("client_id none: %+v", c)
	}
}
