package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/boxagent/boxagent/network"
)

// TestParseIPv6: [network.uplink.ipv6] is read into the uplink and
// validated with the rest, each problem at its key and line (a missing
// key at its table's).
func TestParseIPv6(t *testing.T) {
	good := `[[network.uplink]]
parent = "eth0"
vlan = 45
[network.uplink.ipv4]
method = "dhcp"
default_route = false
[network.uplink.ipv6]
method = "auto"
enterprise_number = 3561
vendor_class = "IPTV_STB"
vendor_options = { "1" = "hex:0a0b" }
prefix_delegation = 56
`
	c, err := Parse("config.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	v6 := c.Network.Uplinks[0].IPv6
	if v6.Method != network.IPv6Auto || v6.EnterpriseNumber != 3561 || v6.VendorClass != "IPTV_STB" ||
		v6.VendorOptions["1"] != "hex:0a0b" || v6.PrefixDelegation != 56 {
		t.Errorf("ipv6 %+v", v6)
	}

	bad := `[[network.uplink]]
parent = "eth0"
[network.uplink.ipv4]
method = "dhcp"
[network.uplink.ipv6]
method = "auto"
vendor_class = "IPTV_STB"
prefix_delegation = 80
`
	_, err = Parse("config.toml", []byte(bad))
	checkErrs(t, err, []string{
		"config.toml:5: network.uplink[0].ipv6.enterprise_number: missing: options 16 and 17 carry the vendor's IANA enterprise number (your ISP's documents name it)",
		"config.toml:8: network.uplink[0].ipv6.prefix_delegation: 80 is out of range 1..64 (a prefix length; 0 asks for none)",
	})
}

// TestReadmeIPv6Example: the README's IPv6 example is a valid config.
func TestReadmeIPv6Example(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\\*\\*IPv6\\.\\*\\*.*?```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no toml block in its IPv6 section")
	}
	c, err := Parse("README.md", m[1])
	if err != nil {
		t.Fatalf("the README's IPv6 example: %v", err)
	}
	if v6 := c.Network.Uplinks[0].IPv6; v6.Method != network.IPv6Auto || v6.VendorClass == "" {
		t.Errorf("the README's IPv6 example reads as %+v", v6)
	}
}
