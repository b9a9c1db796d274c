package provision

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// NetworkConfig is what a cloud-init NoCloud network-config (version 2,
// netplan's schema) says that boxagent can use: Wi-Fi networks and wired
// uplinks. Notes lists what was ignored, for the user.
type NetworkConfig struct {
	WiFi   []WiFi
	Uplink []Uplink
	Notes  []string
}

// ParseNetworkConfig reads a network-config file: YAML or JSON, with or
// without the top-level "network:" key. Only version 2 is read: wifis
// (access-points with password), ethernets and vlans (dhcp4, addresses,
// gateway4 or a default route, nameservers, macaddress).
func ParseNetworkConfig(data []byte) (*NetworkConfig, error) {
	doc, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("network-config: %w", err)
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("network-config: not a mapping")
	}
	if n, ok := root["network"].(map[string]any); ok {
		root = n
	}
	if v := str(root["version"]); v != "2" {
		return nil, fmt.Errorf("network-config: version %q: only version 2 (netplan) is read", v)
	}
	nc := &NetworkConfig{}
	for _, name := range keys(root) {
		if !slices.Contains([]string{"version", "renderer", "wifis", "ethernets", "vlans"}, name) {
			nc.Notes = append(nc.Notes, fmt.Sprintf("network-config: %s ignored", name))
		}
	}
	wifis, _ := root["wifis"].(map[string]any)
	for _, ifname := range keys(wifis) {
		w, _ := wifis[ifname].(map[string]any)
		aps, _ := w["access-points"].(map[string]any)
		for _, ssid := range keys(aps) {
			ap, _ := aps[ssid].(map[string]any)
			psk := str(ap["password"])
			if auth, ok := ap["auth"].(map[string]any); ok && psk == "" {
				psk = str(auth["password"])
			}
			nc.WiFi = append(nc.WiFi, WiFi{SSID: ssid, PSK: psk, Hidden: str(ap["hidden"]) == "true"})
		}
		if _, static := w["addresses"]; static {
			nc.Notes = append(nc.Notes, fmt.Sprintf("network-config: wifis.%s: static addresses ignored; Wi-Fi uses DHCP", ifname))
		}
	}
	eths, _ := root["ethernets"].(map[string]any)
	for _, name := range keys(eths) {
		e, _ := eths[name].(map[string]any)
		u := Uplink{Name: name, Parent: name}
		if set := str(e["set-name"]); set != "" {
			u.Name, u.Parent = set, set
		}
		if err := nc.addressing(&u, "ethernets."+name, e); err != nil {
			return nil, err
		}
		nc.Uplink = append(nc.Uplink, u)
	}
	vlans, _ := root["vlans"].(map[string]any)
	for _, name := range keys(vlans) {
		v, _ := vlans[name].(map[string]any)
		id, err := strconv.Atoi(str(v["id"]))
		if err != nil {
			return nil, fmt.Errorf("network-config: vlans.%s.id: %q is not a number", name, str(v["id"]))
		}
		u := Uplink{Name: name, Parent: str(v["link"]), VLAN: id}
		if err := nc.addressing(&u, "vlans."+name, v); err != nil {
			return nil, err
		}
		nc.Uplink = append(nc.Uplink, u)
	}
	return nc, nil
}

// networkdDHCPMetric is systemd-networkd's route metric for DHCPv4 routes
// (netplan's renderer on Raspberry Pi OS and Ubuntu images).
const networkdDHCPMetric = 1024

// addressing fills an uplink's IPv4 from a netplan interface definition.
func (nc *NetworkConfig) addressing(u *Uplink, key string, def map[string]any) error {
	u.MAC = strings.ToLower(str(def["macaddress"]))
	var v4 []string
	for _, a := range list(def["addresses"]) {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return fmt.Errorf("network-config: %s.addresses: %q is not an address/prefix", key, a)
		}
		if p.Addr().Is4() {
			v4 = append(v4, a)
		} else {
			nc.Notes = append(nc.Notes, fmt.Sprintf("network-config: %s: IPv6 address %s ignored", key, a))
		}
	}
	switch {
	case str(def["dhcp4"]) == "true" || str(def["dhcp4"]) == "yes":
		u.IPv4.Method = "dhcp"
		// networkd's metric for DHCP routes, so that a static default
		// route (metric 0) beside it wins, as it did under netplan.
		u.IPv4.RouteMetric = networkdDHCPMetric
		if o, ok := def["dhcp4-overrides"].(map[string]any); ok {
			if m, err := strconv.Atoi(str(o["route-metric"])); err == nil {
				u.IPv4.RouteMetric = m
			}
		}
	case len(v4) > 0:
		u.IPv4.Method, u.IPv4.Address = "static", v4[0]
		if len(v4) > 1 {
			nc.Notes = append(nc.Notes, fmt.Sprintf("network-config: %s: only the first IPv4 address, %s, is used", key, v4[0]))
		}
	default:
		u.IPv4.Method = "none"
	}
	u.IPv4.Gateway = str(def["gateway4"])
	if routes, ok := def["routes"].([]any); ok {
		for _, r := range routes {
			rm, _ := r.(map[string]any)
			if to := str(rm["to"]); (to == "default" || to == "0.0.0.0/0") && u.IPv4.Gateway == "" {
				u.IPv4.Gateway = str(rm["via"])
				if m, err := strconv.Atoi(str(rm["metric"])); err == nil && u.IPv4.Method == "static" {
					u.IPv4.RouteMetric = m
				}
			}
		}
	}
	if ns, ok := def["nameservers"].(map[string]any); ok {
		u.IPv4.DNS = list(ns["addresses"])
	}
	if u.IPv4.Method != "static" {
		u.IPv4.Gateway = ""
	}
	return nil
}

// Merge adds the networks of nc that f does not name: provision.toml wins
// over network-config for the same SSID or uplink name.
func (f *File) Merge(nc *NetworkConfig) {
	for _, w := range nc.WiFi {
		if !slices.ContainsFunc(f.Network.WiFi, func(o WiFi) bool { return o.SSID == w.SSID }) {
			f.Network.WiFi = append(f.Network.WiFi, w)
		}
	}
	for _, u := range nc.Uplink {
		if !slices.ContainsFunc(f.Network.Uplink, func(o Uplink) bool { return o.Name == u.Name }) {
			f.Network.Uplink = append(f.Network.Uplink, u)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []string {
	var out []string
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			out = append(out, str(x))
		}
	case string:
		out = append(out, t)
	}
	return out
}

// keys returns a mapping's keys sorted, so the result does not depend on
// map order.
func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
