package provision

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseNetworkConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/network-config")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ParseNetworkConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	wantWiFi := []WiFi{{SSID: "Cafe Wi-Fi", PSK: "espresso-4-all"}, {SSID: "home", PSK: "ignored: provision.toml names home"}}
	if !reflect.DeepEqual(nc.WiFi, wantWiFi) {
		t.Errorf("wifi = %+v\nwant %+v", nc.WiFi, wantWiFi)
	}
	wantUplinks := []Uplink{
		{Name: "eth0", Parent: "eth0", IPv4: IPv4{Method: "dhcp", RouteMetric: 1024}},
		{Name: "iptv-vlan", Parent: "eth0", VLAN: 46, IPv4: IPv4{Method: "static", Address: "192.0.2.10/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.53"}}},
	}
	if !reflect.DeepEqual(nc.Uplink, wantUplinks) {
		t.Errorf("uplinks = %+v\nwant %+v", nc.Uplink, wantUplinks)
	}
	if want := "network-config: vlans.iptv-vlan: IPv6 address 2001:db8::10/64 ignored"; !slices.Contains(nc.Notes, want) {
		t.Errorf("notes = %q, want %q", nc.Notes, want)
	}

	// provision.toml wins for the same SSID; the rest is added and checked.
	f := load(t, "provision.toml")
	f.Merge(nc)
	if len(f.Network.WiFi) != 2 || f.Network.WiFi[0].PSK != "home-wifi-secret" || f.Network.WiFi[1].SSID != "Cafe Wi-Fi" {
		t.Errorf("merged wifi = %+v", f.Network.WiFi)
	}
	if len(f.Network.Uplink) != 3 {
		t.Errorf("merged uplinks = %+v", f.Network.Uplink)
	}
	if err := f.Validate("merged"); err != nil {
		t.Errorf("merged: %v", err)
	}
}

func TestParseNetworkConfigForms(t *testing.T) {
	tests := []struct {
		name, doc string
		wifi      []WiFi
		uplinks   int
		err       string
	}{
		{"no network key, auth password, hidden", "version: 2\nwifis:\n  wlan0:\n    access-points:\n      'o''neil':   # quoted key\n        hidden: true\n        auth:\n          key-management: psk\n          password: \"pass word#1\"\n",
			[]WiFi{{SSID: "o'neil", PSK: "pass word#1", Hidden: true}}, 0, ""},
		{"JSON", `{"network": {"version": 2, "wifis": {"wlan0": {"access-points": {"lab": {"password": "12345678"}}}}, "ethernets": {"e": {"set-name": "lan0", "dhcp4": false}}}}`,
			[]WiFi{{SSID: "lab", PSK: "12345678"}}, 1, ""},
		{"open network", "network:\n  version: 2\n  wifis:\n    wlan0:\n      access-points:\n        guest: {}\n", []WiFi{{SSID: "guest"}}, 0, ""},
		{"sequence under a key at the same indent", "version: 2\nethernets:\n  eth0:\n    addresses:\n    - 10.0.0.2/8\n    gateway4: 10.0.0.1\n", nil, 1, ""},
		{"version 1", "version: 1\nconfig:\n  - type: physical\n    name: eth0\n", nil, 0, `version "1": only version 2`},
		{"tabs", "version: 2\n\tethernets: {}\n", nil, 0, "tabs cannot indent"},
		{"block scalar", "version: 2\nwifis: |\n  x\n", nil, 0, "not supported"},
		{"bad vlan id", "version: 2\nvlans:\n  v:\n    id: x\n    link: eth0\n", nil, 0, `vlans.v.id: "x" is not a number`},
		{"bad address", "version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.300/8]\n", nil, 0, "is not an address/prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := ParseNetworkConfig([]byte(tt.doc))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(nc.WiFi, tt.wifi) || len(nc.Uplink) != tt.uplinks {
				t.Errorf("wifi %+v, uplinks %+v", nc.WiFi, nc.Uplink)
			}
		})
	}
}

func TestFirstBoot(t *testing.T) {
	root := image(t)
	boot := t.TempDir()
	for _, name := range []string{ProvisionName, NetworkConfigName} {
		data, _ := os.ReadFile(filepath.Join("testdata", name))
		os.WriteFile(filepath.Join(boot, name), data, 0o644)
	}
	o := options(t, root)
	o.InstallBinary = ""
	o.Source = ""
	res, err := FirstBoot([]string{filepath.Join(t.TempDir(), "missing"), boot}, o)
	if err != nil {
		t.Fatal(err)
	}
	stamp := ".applied-20261127T080000Z"
	for _, name := range []string{ProvisionName, NetworkConfigName} {
		if _, err := os.Stat(filepath.Join(boot, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", name)
		}
		if _, err := os.Stat(filepath.Join(boot, name+stamp)); err != nil {
			t.Errorf("%s not renamed: %v", name, err)
		}
	}
	if res.Operation != 1 || res.Dir != boot {
		t.Errorf("operation %d in %s", res.Operation, res.Dir)
	}
	cfg, _ := os.ReadFile(filepath.Join(root, configFile))
	for _, want := range []string{"ssid = 'Cafe Wi-Fi'", "name = 'iptv-vlan'", "psk = 'home-wifi-secret'", "vlan = 46"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config.toml lacks %s:\n%s", want, cfg)
		}
	}
	// The second boot finds nothing: the files were applied once.
	if _, err := FirstBoot([]string{boot}, o); !errors.Is(err, ErrNothingToDo) {
		t.Errorf("second boot: %v, want ErrNothingToDo", err)
	}
}

func TestFirstBootInvalidStays(t *testing.T) {
	root := image(t)
	boot := t.TempDir()
	os.WriteFile(filepath.Join(boot, ProvisionName), []byte("hostname = \"bad_name\"\n"), 0o644)
	before := tree(t, root)
	o := options(t, root)
	o.InstallBinary = ""
	if _, err := FirstBoot([]string{boot}, o); err == nil || !strings.Contains(err.Error(), `hostname: "bad_name" is not a host name`) {
		t.Fatalf("error = %v", err)
	}
	if _, err := os.Stat(filepath.Join(boot, ProvisionName)); err != nil {
		t.Errorf("an invalid file must stay to be fixed: %v", err)
	}
	if tree(t, root) != before {
		t.Errorf("an invalid file changed the image")
	}
}

// TestFirstBootNetworkConfigOnly: an image prepared by Raspberry Pi Imager
// has a network-config and no provision.toml; it is applied on its own.
func TestFirstBootNetworkConfigOnly(t *testing.T) {
	root := image(t)
	boot := t.TempDir()
	data, _ := os.ReadFile("testdata/network-config")
	os.WriteFile(filepath.Join(boot, NetworkConfigName), data, 0o644)
	o := options(t, root)
	o.InstallBinary, o.Source = "", ""
	res, err := FirstBoot([]string{boot}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(boot, NetworkConfigName+".applied-20261127T080000Z")); err != nil {
		t.Errorf("network-config not renamed: %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(root, configFile))
	if !strings.Contains(string(cfg), "ssid = 'Cafe Wi-Fi'") || !strings.Contains(string(cfg), "board = 'auto'") || res.Operation != 1 {
		t.Errorf("operation %d, config.toml:\n%s", res.Operation, cfg)
	}
}

// TestExamples: the examples the packages ship are valid provision files.
func TestExamples(t *testing.T) {
	data, err := os.ReadFile("../../../deploy/deb/examples/provision.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("examples/provision.toml", data); err != nil {
		t.Errorf("the shipped example: %v", err)
	}
}
