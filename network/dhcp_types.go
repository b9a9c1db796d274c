package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/boxagent/boxagent/internal/clock"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
)

// State is a state of the RFC 2131 client (section 4.4, figure 5).
// INIT-REBOOT and REBOOTING are not used: the agent starts from INIT.
type State int

const (
	StateInit State = iota
	StateSelecting
	StateRequesting
	StateBound
	StateRenewing
	StateRebinding
)

var stateNames = [...]string{"init", "selecting", "requesting", "bound", "renewing", "rebinding"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText writes the state's name ("bound").
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name, so that clients of the API can
// decode what MarshalText wrote.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown DHCP state %q", b)
}

// Errors carried by Event.Err.
var (
	// ErrNoOffer: DISCOVERs went unanswered for DHCPConfig.OfferTimeout.
	// The client keeps trying.
	ErrNoOffer = errors.New("no DHCP offer: the server ignored us; check vendor_class")
	// ErrNAK: the server refused the address; the client starts over.
	ErrNAK = errors.New("the DHCP server refused the lease (DHCPNAK)")
	// ErrLeaseExpired: no server renewed the lease in time; its address
	// and routes were removed.
	ErrLeaseExpired = errors.New("DHCP lease expired: no server answered the renewal")
)

// Lease is what a server granted. Its times count from the sending of
// the REQUEST that the ACK answered, as RFC 2131 asks.
type Lease struct {
	Address netip.Prefix `json:"address"`
	Router  netip.Addr   `json:"router,omitzero"`
	DNS     []netip.Addr `json:"dns,omitempty"`
	Domain  string       `json:"domain,omitempty"`
	// Search is option 119 (RFC 3397), the domain search list; nil when
	// the server sent none or a malformed one.
	Search []string `json:"search,omitempty"`
	// Routes are option 121's classless static routes (or 249's), less
	// the default route among them, which is Router: RFC 3442 has the
	// client ignore option 3 when the server sends 121.
	Routes   []Route       `json:"routes,omitempty"`
	Server   netip.Addr    `json:"server"`
	Acquired time.Time     `json:"acquired"`
	Duration time.Duration `json:"duration"`
	T1       time.Duration `json:"t1"`
	T2       time.Duration `json:"t2"`
}

// SearchDomains is what the lease puts on resolv.conf's search line:
// option 119's list when the server sent one, else option 15's domain
// (what dhclient and systemd-networkd do too).
func (l *Lease) SearchDomains() []string {
	switch {
	case len(l.Search) > 0:
		return l.Search
	case l.Domain != "":
		return []string{l.Domain}
	}
	return nil
}

// RenewAt is T1: when the client asks its server to extend the lease.
func (l *Lease) RenewAt() time.Time { return l.Acquired.Add(l.T1) }

// RebindAt is T2: when the client asks any server.
func (l *Lease) RebindAt() time.Time { return l.Acquired.Add(l.T2) }

// ExpiresAt is the end of the lease.
func (l *Lease) ExpiresAt() time.Time { return l.Acquired.Add(l.Duration) }

// Event is a change of a DHCP client: a new state, a new lease, or a
// problem while it keeps trying.
type Event struct {
	Link  string    `json:"link"`
	State State     `json:"state"`
	Lease *Lease    `json:"lease,omitempty"` // in effect; nil before BOUND and after expiry
	Err   error     `json:"-"`               // ErrNoOffer, ErrNAK, ErrLeaseExpired, or a failure to apply the lease
	Time  time.Time `json:"time"`
}

// MarshalJSON adds the error's message as "error".
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	var msg string
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(e), msg})
}

func (e Event) String() string {
	s := fmt.Sprintf("%s: %s", e.Link, e.State)
	if e.Lease != nil {
		s += fmt.Sprintf(" %s until %s", e.Lease.Address, e.Lease.ExpiresAt().Format(time.RFC3339))
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Clock is the time the client runs on; tests pass a fake one
// (internal/clock/clocktest).
type Clock = clock.Clock

// Timer is a pending call of Clock.AfterFunc.
type Timer = clock.Timer

// SystemClock is the time package's clock, the default one.
type SystemClock = clock.System

// Conn carries DHCP messages on one link. RawConn is the real one; a
// test passes a fake that answers at the wire.
type Conn interface {
	// Send sends m to dst: the limited broadcast address, or a server.
	Send(m *dhcpv4.DHCPv4, dst netip.Addr) error
	// Receive blocks until a message for the client arrives, or Close.
	Receive() (*dhcpv4.DHCPv4, error)
	Close() error
}

// Netlink is what the client changes in the kernel; *netlink.Handle has
// it (made with netlink.NewHandleAt for a namespace).
type Netlink interface {
	LinkByName(name string) (netlink.Link, error)
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteReplace(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
}

var _ Netlink = (*netlink.Handle)(nil)
