package wifi

import (
	"context"
	"log/slog"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/boxagent/boxagent/network"
)

// StationDHCP addresses the station's link with the wired uplinks' DHCP
// client (package network), started once the link first completes and
// asked to renew at every re-join. The lease's DNS servers follow the
// link as a wired uplink's follow its carrier: out of resolv.conf while
// the station is not associated, back when it is.
type StationDHCP struct {
	o   StationDHCPOptions
	log *slog.Logger

	mu         sync.Mutex
	associated bool // the station's last known state was completed

	// clientMu is held while a client is replaced: a join waits for the
	// old one to end.
	clientMu sync.Mutex
	client   *network.DHCPClient
	ssid     string // the network its lease is from
	stop     func() // ends its Run, waits for it, and drops its DNS servers
}

// StationDHCPOptions configure a StationDHCP.
type StationDHCPOptions struct {
	// Link is the wireless interface.
	Link string
	// DNS is the agent's one resolv.conf, shared with the wired uplinks:
	// the lease's servers and search domains go there at the route
	// metric. nil writes nothing.
	DNS *network.ResolvConf
	// Metric is [wifi] route_metric in effect, read for each new client.
	Metric func() uint32
	// OnEvent gets the client's events.
	OnEvent func(network.Event)
	Logger  *slog.Logger
}

// NewStationDHCP makes the addressing of o.Link; no client runs yet.
func NewStationDHCP(o StationDHCPOptions) *StationDHCP {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnEvent == nil {
		o.OnEvent = func(network.Event) {}
	}
	return &StationDHCP{o: o, log: o.Logger}
}

// stationDHCPConfig is the link's DHCP client settings: the MAC as
// client id (what a home router expects), the route metric, and the
// shared resolv.conf.
func stationDHCPConfig(link string, metric uint32, dns *network.ResolvConf) network.DHCPConfig {
	return network.DHCPConfig{Link: link, ClientIDMAC: true, RouteMetric: metric, Source: "wifi dhcp", DNS: dns}
}

// stationCarrier says whether a wpa_supplicant state is an associated
// link (known false for states between: a rekey or a roam's handshake
// keeps the servers where they are).
func stationCarrier(state string) (up, known bool) {
	switch state {
	case StateCompleted:
		return true, true
	case StateDisconnected, StateInactive, StateDisabled, StateAbsent:
		return false, true
	}
	return false, false
}

// State follows the station's state: the lease's DNS servers are in
// resolv.conf while it is associated.
func (s *StationDHCP) State(state string) {
	up, known := stationCarrier(state)
	if !known {
		return
	}
	s.mu.Lock()
	s.associated = up
	s.mu.Unlock()
	if err := s.o.DNS.SetCarrier(s.o.Link, up); err != nil {
		s.log.Warn("cannot write the DNS servers", "err", err)
	}
}

// Join addresses the link joined to ssid. Back on the same network the
// running client renews its lease; on another network the old client
// stops, its address goes, and a new one starts from discovery.
func (s *StationDHCP) Join(ctx context.Context, ssid string) {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.client != nil && (s.ssid == ssid || ssid == "") {
		s.client.Renew()
		return
	}
	if s.client != nil {
		s.log.Info("Wi-Fi network changed: new DHCP lease", "from", s.ssid, "to", ssid)
		s.dropLocked()
	}
	h, err := netlink.NewHandle()
	if err != nil {
		s.log.Warn("cannot address the Wi-Fi link: no netlink", "err", err)
		return
	}
	link, err := h.LinkByName(s.o.Link)
	if err != nil {
		h.Close()
		s.log.Warn("cannot address the Wi-Fi link", "err", err)
		return
	}
	conn, err := network.OpenRawConn(netns.None(), link.Attrs().Index)
	if err != nil {
		h.Close()
		s.log.Warn("cannot address the Wi-Fi link", "err", err)
		return
	}
	s.runLocked(ctx, h, conn, ssid, h.Close)
}

// runLocked starts the link's DHCP client for ssid over nl and conn;
// closed is called once its Run returned. clientMu is held.
func (s *StationDHCP) runLocked(ctx context.Context, nl network.Netlink, conn network.Conn, ssid string, closed func()) {
	metric := uint32(DefaultRouteMetric)
	if s.o.Metric != nil {
		metric = s.o.Metric()
	}
	c := network.NewDHCPClient(nl, conn, stationDHCPConfig(s.o.Link, metric, s.o.DNS), func(ev network.Event) {
		s.o.OnEvent(ev)
		s.log.Info("Wi-Fi addressing", "event", ev.String())
	})
	cctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	s.client, s.ssid = c, ssid
	s.stop = func() { cancel(); <-ended; s.dropDNS() }
	go func() {
		err := c.Run(cctx)
		closed()
		close(ended) // before clientMu: Join may hold it while it waits
		if err != nil && cctx.Err() == nil {
			s.log.Warn("the Wi-Fi DHCP client stopped", "err", err)
			s.dropDNS() // nobody keeps the lease now
		}
		s.clientMu.Lock()
		if s.client == c {
			s.client = nil
		}
		s.clientMu.Unlock()
	}()
}

// Drop stops the link's DHCP client and takes its address off the link:
// the interface is about to change networks or become an AP.
func (s *StationDHCP) Drop() {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	s.dropLocked()
}

// Forgotten drops the lease of a network just forgotten: wpa_supplicant
// left it, and its address and DNS servers must not outlive it.
func (s *StationDHCP) Forgotten(ssid string) {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if s.client != nil && s.ssid == ssid {
		s.log.Info("Wi-Fi network forgotten: its lease goes", "ssid", ssid)
		s.dropLocked()
	}
}

// dropLocked is Drop with clientMu held.
func (s *StationDHCP) dropLocked() {
	if s.client == nil {
		return
	}
	old := s.client
	s.stop()
	s.client = nil
	l := old.Status().Lease
	if l == nil {
		return
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return
	}
	defer h.Close()
	if link, err := h.LinkByName(s.o.Link); err == nil {
		if addr, _ := netlink.ParseAddr(l.Address.String()); addr != nil {
			h.AddrDel(link, addr)
		}
	}
}

// dropDNS takes the lease's servers out of resolv.conf: its client
// stopped for a network change, the hotspot, a forget, or a failure. (At
// shutdown they stay, as the address does for its lifetime.)
func (s *StationDHCP) dropDNS() {
	if err := s.o.DNS.Drop(s.o.Link); err != nil {
		s.log.Warn("cannot write the DNS servers", "err", err)
	}
}

// Address is the lease's address, or "".
func (s *StationDHCP) Address() string {
	s.clientMu.Lock()
	c := s.client
	s.clientMu.Unlock()
	if c == nil {
		return ""
	}
	if l := c.Status().Lease; l != nil {
		return l.Address.String()
	}
	return ""
}

// Uplink is the link as `net show` lists it beside the wired uplinks:
// association, the DHCP client's state and lease; hotspot says the
// setup hotspot runs on it.
func (s *StationDHCP) Uplink(hotspot bool) *network.UplinkStatus {
	s.mu.Lock()
	associated := s.associated
	s.mu.Unlock()
	s.clientMu.Lock()
	c, ssid := s.client, s.ssid
	s.clientMu.Unlock()
	u := &network.UplinkStatus{Name: s.o.Link, Method: network.MethodDHCP, Carrier: associated}
	if c != nil {
		u.SSID, u.DHCP = ssid, c.View()
	}
	switch {
	case hotspot:
		u.Detail = "the setup hotspot runs on it"
	case !associated:
		u.Detail = "not associated (boxagent wifi status)"
	case u.DHCP == nil:
		u.Detail = "no DHCP client yet"
	default:
		u.Detail = u.DHCP.NoLease()
	}
	u.Up = u.Detail == ""
	return u
}
