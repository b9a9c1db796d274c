package wifi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/network"
)

// The setup hotspot: the access point a fresh box opens so that a phone
// can tell it which network to join. This file holds its pieces that
// know nothing of HTTP: its name, its password, its address and its DHCP
// server. The AP itself is wpa_supplicant's (ap.go).

// SetupStatus is the setup hotspot's state, as the agent's API
// shows it: in GET /api/v1/wifi as "setup", and at GET
// /api/v1/wifi/setup, where the password is given to callers on the
// unix socket only.
type SetupStatus struct {
	State   string `json:"state"`
	SSID    string `json:"ssid,omitempty"`
	Address string `json:"address,omitempty"`
	URL     string `json:"url,omitempty"`
	// Password is only ever set in answers over the unix socket.
	Password string `json:"password,omitempty"`
	// Auto is true when setup_after opened it.
	Auto    bool       `json:"auto,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Clients int        `json:"clients,omitempty"`
	// The last network tried from the setup page, and why it failed.
	LastSSID      string `json:"last_ssid,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	LastErrorCode string `json:"last_error_code,omitempty"`
	// SetupAfter is the configured wait, "" for never.
	SetupAfter string `json:"setup_after,omitempty"`
	// WatchesFor lists the saved networks whose return closes the
	// hotspot by itself (giveway.go); empty: it stays until setup
	// ends.
	WatchesFor []string `json:"watches_for,omitempty"`
	// HoldsUntil, while set, is when the watch starts: the last give-ways
	// (GaveWay of them in a row) did not end in a join, so the hotspot
	// holds a while before it looks for the saved networks again.
	HoldsUntil *time.Time `json:"holds_until,omitempty"`
	GaveWay    int        `json:"gave_way,omitempty"`
}

// HotspotPasswordAlphabet is the password's alphabet: lowercase letters
// and digits without the ones a person misreads on a serial console or a
// phone keyboard (0/o, 1/l/i).
const HotspotPasswordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// HotspotPasswordLength is the password's length: 12 characters of a
// 31-letter alphabet are 59 bits, plenty for a WPA2 network that lives
// minutes.
const HotspotPasswordLength = 12

// HotspotPassword makes a new random WPA2 passphrase.
func HotspotPassword() (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(HotspotPasswordAlphabet)))
	for range HotspotPasswordLength {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("cannot make a hotspot password: %w", err)
		}
		b.WriteByte(HotspotPasswordAlphabet[n.Int64()])
	}
	return b.String(), nil
}

// HotspotSSID names the board's hotspot from its interface's MAC
// address: "boxagent-" and the last four hex digits, so two boxes side
// by side have different names and the name matches a label.
func HotspotSSID(mac net.HardwareAddr) string {
	if len(mac) < 2 {
		return "boxagent-setup"
	}
	return fmt.Sprintf("boxagent-%02x%02x", mac[len(mac)-2], mac[len(mac)-1])
}

// HotspotPrefix is the hotspot's own address and network.
var HotspotPrefix = netip.MustParsePrefix("192.168.4.1/24")

// HotspotFrequency is the AP's channel: 2.4 GHz channel 1, which every
// phone and every regulatory domain allows.
const HotspotFrequency = 2412

// SetHotspotAddress puts prefix on the link (replacing it if it is
// there) and brings the link up.
func SetHotspotAddress(h HotspotLinks, ifname string, prefix netip.Prefix) error {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("cannot find %s: %w", ifname, err)
	}
	addr, err := netlink.ParseAddr(prefix.String())
	if err != nil {
		return err
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("cannot put %s on %s: %w", prefix, ifname, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("cannot bring %s up: %w", ifname, err)
	}
	return nil
}

// ClearHotspotAddress takes prefix off the link again; an address that
// is not there is not an error.
func ClearHotspotAddress(h HotspotLinks, ifname string, prefix netip.Prefix) error {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("cannot find %s: %w", ifname, err)
	}
	addr, _ := netlink.ParseAddr(prefix.String())
	if err := h.AddrDel(link, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("cannot take %s off %s: %w", prefix, ifname, err)
	}
	return nil
}

// HotspotDHCPConfig configures the hotspot's DHCP server.
type HotspotDHCPConfig struct {
	// Interface is the link it serves, e.g. "wlan0".
	Interface string
	// Server is the link's own address and prefix; clients get the
	// addresses from .10 to .250 of it (or as many as the prefix holds),
	// Server as their router.
	Server netip.Prefix
	// Lease is how long an address is leased; default 10 minutes, the
	// life of a setup session.
	Lease time.Duration
	// DNS: also hand out Server as the name server (when something
	// answers DNS there).
	DNS    bool
	Logger *slog.Logger
	// OnLease gets every address acknowledged, from the serving
	// goroutine: it must not block.
	OnLease func(mac net.HardwareAddr, addr netip.Addr)
}

// HotspotDHCP is a small in-process DHCP server for the hotspot's
// clients: one address per MAC, nothing persisted (a setup session is
// short, and a restarted server simply offers addresses anew).
type HotspotDHCP struct {
	cfg   HotspotDHCPConfig
	srv   *server4.Server
	log   *slog.Logger
	first netip.Addr
	last  netip.Addr
	done  chan struct{}

	mu     sync.Mutex
	leases map[string]netip.Addr // by MAC
}

// StartHotspotDHCP opens the DHCP port on the interface, in namespace ns
// (netns.None() for the agent's own), and serves until Close.
func StartHotspotDHCP(ns netns.NsHandle, cfg HotspotDHCPConfig) (*HotspotDHCP, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !cfg.Server.Addr().Is4() || cfg.Server.Bits() > 28 {
		return nil, fmt.Errorf("cannot serve DHCP on %s: want an IPv4 prefix of /28 or wider", cfg.Server)
	}
	s := &HotspotDHCP{cfg: cfg, log: cfg.Logger.With("component", "hotspot-dhcp", "interface", cfg.Interface),
		leases: map[string]netip.Addr{}, done: make(chan struct{})}
	s.first, s.last = poolOf(cfg.Server)
	var conn *net.UDPConn
	err := network.InNamespace(ns, func() error {
		var err error
		conn, err = server4.NewIPv4UDPConn(cfg.Interface, &net.UDPAddr{Port: dhcpv4.ServerPort})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open the DHCP server port on %s: %w", cfg.Interface, err)
	}
	s.srv, err = server4.NewServer(cfg.Interface, nil, s.handle, server4.WithConn(conn))
	if err != nil {
		conn.Close()
		return nil, err
	}
	go func() {
		defer close(s.done)
		s.srv.Serve()
	}()
	s.log.Info("DHCP server up", "pool", s.first.String()+"-"+s.last.String())
	return s, nil
}

// poolOf is the range of client addresses in p: from .10 to .250, cut to
// what the prefix holds without the network, broadcast and server.
func poolOf(p netip.Prefix) (netip.Addr, netip.Addr) {
	base := p.Masked().Addr().As4()
	size := uint32(1) << (32 - p.Bits())
	lo, hi := uint32(10), uint32(250)
	if hi > size-2 {
		hi = size - 2
	}
	if lo > hi {
		lo = 2
	}
	at := func(off uint32) netip.Addr {
		n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		n += off
		return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
	return at(lo), at(hi)
}

// Close stops serving and waits for the server to end.
func (s *HotspotDHCP) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// Leases is the addresses handed out, by MAC.
func (s *HotspotDHCP) Leases() map[string]netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]netip.Addr, len(s.leases))
	for k, v := range s.leases {
		out[k] = v
	}
	return out
}

// pick is the address for mac: the one it has, else the one it asks for
// when free, else the first free one. Call with mu held.
func (s *HotspotDHCP) pick(mac string, want netip.Addr) (netip.Addr, bool) {
	if a, ok := s.leases[mac]; ok {
		return a, true
	}
	used := map[netip.Addr]bool{s.cfg.Server.Addr(): true}
	for _, a := range s.leases {
		used[a] = true
	}
	if want.IsValid() && s.inPool(want) && !used[want] {
		return want, true
	}
	for a := s.first; a.Compare(s.last) <= 0; a = a.Next() {
		if !used[a] {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (s *HotspotDHCP) inPool(a netip.Addr) bool {
	return a.Is4() && a.Compare(s.first) >= 0 && a.Compare(s.last) <= 0
}

// handle answers one message: DISCOVER with an OFFER, REQUEST with an
// ACK (or a NAK for an address that is not the client's), RELEASE by
// freeing the address.
func (s *HotspotDHCP) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	mac := m.ClientHWAddr.String()
	requested, _ := netip.AddrFromSlice(m.RequestedIPAddress().To4())
	if !requested.IsValid() || requested.IsUnspecified() {
		requested, _ = netip.AddrFromSlice(m.ClientIPAddr.To4())
	}
	var reply dhcpv4.MessageType
	var addr netip.Addr
	s.mu.Lock()
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		var ok bool
		if addr, ok = s.pick(mac, requested); !ok {
			s.mu.Unlock()
			s.log.Warn("no free address for a client", "mac", mac)
			return
		}
		reply = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		// A REQUEST for another server (its server identifier) is the
		// client's choice of that server: nothing to answer.
		if sid := m.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(s.cfg.Server.Addr().AsSlice())) {
			s.mu.Unlock()
			return
		}
		a, ok := s.pick(mac, requested)
		if !ok || (requested.IsValid() && !requested.IsUnspecified() && a != requested) {
			reply = dhcpv4.MessageTypeNak
		} else {
			addr, reply = a, dhcpv4.MessageTypeAck
			s.leases[mac] = a
		}
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		delete(s.leases, mac)
		s.mu.Unlock()
		return
	default:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	server := net.IP(s.cfg.Server.Addr().AsSlice())
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(reply),
		dhcpv4.WithServerIP(server),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
	}
	if reply != dhcpv4.MessageTypeNak {
		mask := net.CIDRMask(s.cfg.Server.Bits(), 32)
		mods = append(mods,
			dhcpv4.WithYourIP(net.IP(addr.AsSlice())),
			dhcpv4.WithNetmask(mask),
			dhcpv4.WithRouter(server),
			dhcpv4.WithLeaseTime(uint32(s.cfg.Lease/time.Second)),
		)
		if s.cfg.DNS {
			mods = append(mods, dhcpv4.WithDNS(server))
		}
	}
	resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		s.log.Warn("cannot build a DHCP reply", "err", err)
		return
	}
	// A client without an address hears only broadcasts (server4 turned
	// its peer into 255.255.255.255); one renewing has its address.
	if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
		s.log.Warn("cannot send a DHCP reply", "to", peer, "err", err)
		return
	}
	s.log.Debug("DHCP reply", "type", reply.String(), "mac", mac, "address", addr)
	if reply == dhcpv4.MessageTypeAck {
		s.log.Info("address leased", "mac", mac, "address", addr)
		if s.cfg.OnLease != nil {
			s.cfg.OnLease(m.ClientHWAddr, addr)
		}
	}
}
