package network

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
	"unicode"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// View is the wired side of the box as `net show` shows it: the
// configured uplinks with their state, and the kernel's links, IPv4
// addresses and main-table routes.
type View struct {
	Uplinks []UplinkStatus `json:"uplinks"`
	// WiFi is the Wi-Fi link's addressing, beside the wired uplinks; the
	// agent fills it in (the Manager knows only the wired ones).
	WiFi      *UplinkStatus `json:"wifi,omitempty"`
	Links     []LinkInfo    `json:"links"`
	Addresses []AddrInfo    `json:"addresses"`
	Routes    []RouteInfo   `json:"routes"`
	// Default is the default route the kernel uses (the lowest metric)
	// and the uplink that holds it; nil without one. FillDefault sets it.
	Default *DefaultRoute `json:"default_route,omitempty"`
}

// DefaultRoute is the box's way to the internet: the kernel's default
// route of the lowest metric, and whose it is.
type DefaultRoute struct {
	RouteInfo
	// Uplink is the uplink whose link (or PPPoE session's link) carries
	// it: a configured one's name, "wifi", or "" for a route the agent
	// did not make.
	Uplink string `json:"uplink"`
	// Others are the other default routes, by metric: the ones that take
	// over when it goes.
	Others int `json:"others,omitempty"`
}

// FillDefault sets Default from Routes and the uplinks (the Wi-Fi one
// included, once it is set).
func (v *View) FillDefault() {
	v.Default = nil
	for _, r := range v.Routes {
		if r.Dst != "default" {
			continue
		}
		if v.Default != nil {
			if r.Metric < v.Default.Metric {
				v.Default.RouteInfo = r
			}
			v.Default.Others++
			continue
		}
		v.Default = &DefaultRoute{RouteInfo: r}
	}
	if v.Default == nil {
		return
	}
	link := v.Default.Link
	for _, u := range v.Uplinks {
		if u.Name == link || u.PPPoE != nil && u.PPPoE.Link == link {
			v.Default.Uplink = u.Name
			return
		}
	}
	if v.WiFi != nil && v.WiFi.Name == link {
		v.Default.Uplink = "wifi"
	}
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

// UplinkStatus is one uplink as `net show` shows it.
type UplinkStatus struct {
	Name    string       `json:"name"` // its link
	Parent  string       `json:"parent"`
	VLAN    *int         `json:"vlan,omitempty"`
	Method  string       `json:"method"`
	Up      bool         `json:"up"`
	Carrier bool         `json:"carrier"`
	Detail  string       `json:"detail,omitempty"` // why it is not up
	SSID    string       `json:"ssid,omitempty"`   // the Wi-Fi link's network
	DHCP    *DHCPStatus  `json:"dhcp,omitempty"`
	PPPoE   *PPPoEStatus `json:"pppoe,omitempty"`
	Dot1X   *Dot1XStatus `json:"dot1x,omitempty"`
	IPv6    *IPv6Status  `json:"ipv6,omitempty"` // nil when the uplink has no [network.uplink.ipv6]
}

// DHCPStatus is a DHCP client's state, its lease with its times, and
// the options it sends.
type DHCPStatus struct {
	State State             `json:"state"`
	Lease *LeaseTimes       `json:"lease,omitempty"`
	Error string            `json:"error,omitempty"`
	Since time.Time         `json:"since,omitzero"`
	Sent  map[string]string `json:"sent"` // option code → value ("hex:…" unless printable)
}

// LeaseTimes is a lease with its times spelled out.
type LeaseTimes struct {
	Lease
	RenewAt   time.Time `json:"renew_at"`
	RebindAt  time.Time `json:"rebind_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Status is every configured uplink's state.
func (m *Manager) Status() []UplinkStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []UplinkStatus
	for _, u := range m.cfg.Uplinks {
		name := u.LinkName()
		s := UplinkStatus{Name: name, Parent: u.Parent, VLAN: u.VLAN, Method: u.IPv4.Method, Carrier: m.carrier[name]}
		r := m.runners[name]
		switch {
		case errors.Is(m.lastErr[name], ErrNoParent):
			s.Detail = fmt.Sprintf("waiting for its parent link %q", u.Parent)
		case m.lastErr[name] != nil:
			s.Detail = m.lastErr[name].Error()
		case r == nil:
			s.Detail = "not applied"
		case r.exited():
			s.Detail = fmt.Sprintf("client stopped: %v", r.exitErr)
		case !s.Carrier:
			s.Detail = "no carrier"
		}
		if r != nil && r.dot1x != nil {
			d := r.dot1x.Status()
			s.Dot1X = &d
			if s.Detail == "" && d.State != Dot1XAuthorized {
				s.Detail = d.Text()
			}
		}
		if r != nil && r.dhcp != nil {
			s.DHCP = r.dhcp.View()
			if s.Detail == "" {
				s.Detail = s.DHCP.NoLease()
			}
		}
		if r != nil && r.ppp != nil {
			p := r.ppp.Status()
			s.PPPoE = &p
			if s.Detail == "" && !p.Up {
				s.Detail = "PPPoE session down"
				if p.LastError != "" {
					s.Detail += ": " + p.LastError
				}
			}
		}
		if u.IPv6.Configured() && r != nil {
			v6 := r.v6
			if r.ppp6 != nil {
				v6 = r.ppp6.runner()
			}
			s.IPv6 = ipv6Status(m.nl, u.IPv6.Method, v6)
		}
		s.Up = s.Detail == ""
		out = append(out, s)
	}
	return out
}

// View is the client's state, lease and sent options as `net show`
// shows them.
func (c *DHCPClient) View() *DHCPStatus {
	e := c.Status()
	d := &DHCPStatus{State: e.State, Since: e.Time, Sent: optionView(c.SentOptions())}
	if e.Err != nil {
		d.Error = e.Err.Error()
	}
	if e.Lease != nil {
		d.Lease = &LeaseTimes{Lease: *e.Lease, RenewAt: e.Lease.RenewAt(), RebindAt: e.Lease.RebindAt(), ExpiresAt: e.Lease.ExpiresAt()}
	}
	return d
}

// NoLease says why there is no lease ("no lease: selecting: …"), or ""
// when there is one.
func (d *DHCPStatus) NoLease() string {
	if d.Lease != nil {
		return ""
	}
	why := "no lease: " + d.State.String()
	if d.Error != "" {
		why += ": " + d.Error
	}
	return why
}

// optionView spells option values for people: the string when it is
// printable, else "hex:…".
func optionView(opts map[uint8][]byte) map[string]string {
	out := make(map[string]string, len(opts))
	for code, b := range opts {
		out[strconv.Itoa(int(code))] = printable(b)
	}
	return out
}

func printable(b []byte) string {
	for _, r := range string(b) {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return "hex:" + hex.EncodeToString(b)
		}
	}
	if len(b) > 4 && string(b[:4]) == "hex:" {
		return "hex:" + hex.EncodeToString(b)
	}
	return string(b)
}
