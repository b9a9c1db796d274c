package network

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// View is the wired side of the box as `net show` shows it: the
// configured uplinks with their state, and the kernel's links, IPv4
// addresses and main-table routes.
type View struct {
	Uplinks   []UplinkStatus `json:"uplinks"`
	Links     []LinkInfo     `json:"links"`
	Addresses []AddrInfo     `json:"addresses"`
	Routes    []RouteInfo    `json:"routes"`
}

// LinkInfo is one link.
type LinkInfo struct {
	Name   string `json:"name"`
	Index  int    `json:"index"`
	Kind   string `json:"kind"` // "vlan", "veth", "device", "ppp", …
	Parent string `json:"parent,omitempty"`
	VLAN   int    `json:"vlan,omitempty"`
	// Egress is a VLAN's egress QoS map: socket priority → 802.1p PCP.
	Egress  map[string]uint32 `json:"egress_qos,omitempty"`
	MTU     int               `json:"mtu"`
	MAC     string            `json:"mac,omitempty"`
	Up      bool              `json:"up"`
	Carrier bool              `json:"carrier"`
	State   string            `json:"state"` // operational state
	Owned   bool              `json:"owned"` // made by the agent (alias boxagent:NAME)
}

// AddrInfo is one IPv4 address.
type AddrInfo struct {
	Link    string `json:"link"`
	Address string `json:"address"`
	// ValidFor is the seconds left of a lease's address; absent for an
	// address without an end.
	ValidFor *int `json:"valid_for,omitempty"`
}

// RouteInfo is one IPv4 route of the main table.
type RouteInfo struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway,omitempty"`
	Link     string `json:"link,omitempty"`
	Source   string `json:"src,omitempty"`
	Metric   int    `json:"metric"`
	Protocol string `json:"protocol"`
}

// View reads the uplinks' state and the kernel's tables.
func (m *Manager) View() (View, error) {
	v := View{Uplinks: m.Status()}
	if v.Uplinks == nil {
		v.Uplinks = []UplinkStatus{}
	}
	links, err := retryDump("links", m.nl.LinkList)
	if err != nil {
		return v, err
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		a := l.Attrs()
		li := LinkInfo{
			Name: a.Name, Index: a.Index, Kind: l.Type(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0,
			Carrier: carrierUp(a), State: a.OperState.String(), Owned: ownedBy(l) == a.Name,
		}
		if len(a.HardwareAddr) > 0 {
			li.MAC = a.HardwareAddr.String()
		}
		if a.ParentIndex != 0 {
			li.Parent = names[a.ParentIndex]
		}
		if id, egress, ok := vlanView(l); ok {
			li.VLAN = id
			li.Egress = map[string]uint32{}
			for k, p := range egress {
				li.Egress[strconv.Itoa(int(k))] = p
			}
		}
		v.Links = append(v.Links, li)
	}
	addrs, err := retryDump("addresses", func() ([]netlink.Addr, error) { return m.nl.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return v, err
	}
	for _, a := range addrs {
		ai := AddrInfo{Link: names[a.LinkIndex], Address: a.IPNet.String()}
		if a.ValidLft > 0 && uint32(a.ValidLft) != 0xffffffff {
			n := a.ValidLft
			ai.ValidFor = &n
		}
		v.Addresses = append(v.Addresses, ai)
	}
	routes, err := retryDump("routes", func() ([]netlink.Route, error) { return m.nl.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return v, err
	}
	for _, r := range routes {
		ri := RouteInfo{Dst: "default", Link: names[r.LinkIndex], Metric: r.Priority, Protocol: protoName(r.Protocol)}
		if r.Dst != nil && !(r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) {
			ri.Dst = r.Dst.String()
		}
		if r.Gw != nil {
			ri.Gateway = r.Gw.String()
		}
		if r.Src != nil {
			ri.Source = r.Src.String()
		}
		v.Routes = append(v.Routes, ri)
	}
	slices.SortStableFunc(v.Routes, func(a, b RouteInfo) int {
		if (a.Dst == "default") != (b.Dst == "default") {
			if a.Dst == "default" {
				return -1
			}
			return 1
		}
		return a.Metric - b.Metric
	})
	return v, nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

func protoName(p netlink.RouteProtocol) string {
	switch p {
	case unix.RTPROT_KERNEL:
		return "kernel"
	case unix.RTPROT_BOOT:
		return "boot"
	case unix.RTPROT_STATIC:
		return "static"
	case unix.RTPROT_DHCP:
		return "dhcp"
	}
	return fmt.Sprintf("proto %d", int(p))
}
