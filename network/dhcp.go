package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
)

// DHCPConfig is one DHCP client's settings; DHCPConfigFor makes it from
// an uplink.
type DHCPConfig struct {
	Link        string // the link's name in the handle's namespace
	VendorClass []byte // option 60; nil sends none
	// ClientID is option 61, exactly; with ClientIDMAC it is type 1 and
	// the link's MAC instead. Neither sends none.
	ClientID    []byte
	ClientIDMAC bool
	Options     map[uint8][]byte // further options, sent as they are
	RouteMetric uint32
	// NoDefaultRoute: the lease's router gives no default route (the
	// uplink's default_route = false); its other routes still apply.
	NoDefaultRoute bool
	// Routes are the uplink's static routes, put beside the lease's.
	Routes []Route
	// Source is what resolv.conf's comment calls the lease: "" for
	// "dhcp"; the Wi-Fi link's client says "wifi dhcp".
	Source string
	// ResolvConf is where the lease's DNS servers are written; "" for
	// nowhere. DNS, when set, takes them instead.
	ResolvConf string
	// DNS is the resolv.conf the client shares with other uplinks (a
	// Manager's); nil: the client has ResolvConf to itself.
	DNS *ResolvConf

	Clock Clock // nil: the real one
	// Retransmit is the first wait before a DISCOVER or REQUEST is sent
	// again; it doubles up to 64 s. 0: 4 s (RFC 2131).
	Retransmit time.Duration
	// OfferTimeout is how long DISCOVERs go unanswered before the client
	// reports ErrNoOffer (and keeps trying). 0: 10 s.
	OfferTimeout time.Duration
}

// DHCPConfigFor makes the DHCP settings of an uplink whose method is
// dhcp. u must be valid (Config.Validate).
func DHCPConfigFor(u Uplink, resolvConf string) (DHCPConfig, error) {
	v := u.IPv4
	c := DHCPConfig{Link: u.LinkName(), RouteMetric: uint32(v.RouteMetric), ResolvConf: resolvConf, NoDefaultRoute: !v.CarriesDefaultRoute()}
	var err error
	if c.Routes, err = parseRoutes(v.Routes); err != nil {
		return c, fmt.Errorf("cannot use routes: %w", err)
	}
	if v.VendorClass != "" {
		if c.VendorClass, err = ParseOptionValue(v.VendorClass); err != nil {
			return c, fmt.Errorf("cannot use vendor_class: %w", err)
		}
	}
	if c.ClientID, err = parseClientID(v.ClientID); err != nil {
		return c, fmt.Errorf("cannot use client_id: %w", err)
	}
	c.ClientIDMAC = v.ClientID == "" || v.ClientID == "mac"
	for k, s := range v.Options {
		code, err := parseCode(k)
		if err != nil {
			return c, err
		}
		b, err := ParseOptionValue(s)
		if err != nil {
			return c, fmt.Errorf("cannot use option %d: %w", code, err)
		}
		if c.Options == nil {
			c.Options = map[uint8][]byte{}
		}
		c.Options[code] = b
	}
	return c, nil
}

// DHCPClient gets and keeps a lease on one link: it owns the RFC 2131
// state machine, puts the address (with the lease's lifetime, so the
// kernel drops it if the agent dies) and routes into the kernel, and
// writes the DNS servers out.
type DHCPClient struct {
	cfg   DHCPConfig
	nl    Netlink
	dns   *ResolvConf
	conn  Conn
	clock Clock
	emit  func(Event)

	fire  chan fired
	renew chan struct{}
	done  chan struct{}

	mu     sync.Mutex
	status Event

	// Owned by Run's goroutine.
	link   netlink.Link
	hw     net.HardwareAddr
	fixed  dhcpv4.Options
	state  State
	xid    dhcpv4.TransactionID
	offer  *dhcpv4.DHCPv4
	lease  *Lease
	began  time.Time // of the acquisition, for the secs field
	sent   time.Time // first send of the current exchange
	tries  int
	timers [nTimers]Timer
	gens   [nTimers]uint64

	// timerDone, when set (by tests on a fake clock), is called after
	// each timer's firing has been handled.
	timerDone func()
}

type timerKind int

const (
	timerRetransmit timerKind = iota
	timerNoOffer
	timerT1
	timerT2
	timerExpiry
	nTimers
)

type fired struct {
	kind timerKind
	gen  uint64
}

// NewDHCPClient makes a client for cfg.Link. It changes nothing until
// Run. onEvent is called from Run's goroutine for every change, in
// order; it must not block for long.
func NewDHCPClient(nl Netlink, conn Conn, cfg DHCPConfig, onEvent func(Event)) *DHCPClient {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Retransmit <= 0 {
		cfg.Retransmit = 4 * time.Second
	}
	if cfg.OfferTimeout <= 0 {
		cfg.OfferTimeout = 10 * time.Second
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	return &DHCPClient{
		cfg: cfg, nl: nl, dns: resolvFor(cfg.DNS, cfg.ResolvConf), conn: conn, clock: cfg.Clock, emit: onEvent,
		fire:  make(chan fired, nTimers),
		renew: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// Status is the latest event.
func (c *DHCPClient) Status() Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Renew asks the client to talk to its server now rather than at T1: on
// carrier return, or `net renew`. Without a lease it starts discovery
// over.
func (c *DHCPClient) Renew() {
	select {
	case c.renew <- struct{}{}:
	default:
	}
}

// Run runs the client until ctx ends, and closes conn; call it once. It
// leaves the address in place: its lifetime ends it if the agent does
// not come back.
func (c *DHCPClient) Run(ctx context.Context) error {
	defer c.conn.Close()
	link, err := c.nl.LinkByName(c.cfg.Link)
	if err != nil {
		return fmt.Errorf("cannot find link %q: %w", c.cfg.Link, err)
	}
	c.link, c.hw = link, link.Attrs().HardwareAddr
	fixed := c.fixedOptions()
	c.mu.Lock()
	c.fixed = fixed
	c.mu.Unlock()

	msgs := make(chan *dhcpv4.DHCPv4)
	rerr := make(chan error, 1)
	go func() {
		for {
			m, err := c.conn.Receive()
			if err != nil {
				rerr <- err
				return
			}
			select {
			case msgs <- m:
			case <-c.done:
				return
			}
		}
	}()
	defer func() {
		close(c.done)
		for k := range c.timers {
			c.stop(timerKind(k))
		}
	}()

	c.discover()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-rerr:
			return fmt.Errorf("cannot receive DHCP messages on %s: %w", c.cfg.Link, err)
		case m := <-msgs:
			c.receive(m)
		case f := <-c.fire:
			if f.gen == c.gens[f.kind] {
				c.timers[f.kind] = nil
				c.timeout(f.kind)
			}
			if c.timerDone != nil {
				c.timerDone()
			}
		case <-c.renew:
			c.renewNow()
		}
	}
}

// schedule (re)arms one of the client's timers.
func (c *DHCPClient) schedule(k timerKind, d time.Duration) {
	c.stop(k)
	gen := c.gens[k]
	c.timers[k] = c.clock.AfterFunc(max(d, 0), func() {
		select {
		case c.fire <- fired{k, gen}:
		case <-c.done:
		}
	})
}

// stop disarms a timer; a firing already queued is ignored by its
// generation.
func (c *DHCPClient) stop(k timerKind) {
	c.gens[k]++
	if c.timers[k] != nil {
		c.timers[k].Stop()
		c.timers[k] = nil
	}
}

// setState enters s and reports it. Callers send and arm timers first,
// so that whoever waits for the event finds the client settled.
func (c *DHCPClient) setState(s State, err error) {
	c.state = s
	e := Event{Link: c.cfg.Link, State: s, Lease: c.lease, Err: err, Time: c.clock.Now()}
	if c.lease != nil {
		l := *c.lease
		e.Lease = &l
	}
	c.mu.Lock()
	c.status = e
	c.mu.Unlock()
	c.emit(e)
}

// backoff is the wait before the next retransmission in INIT/SELECTING
// and REQUESTING: Retransmit, doubled each try, at most 64 s.
func (c *DHCPClient) backoff() time.Duration {
	d := c.cfg.Retransmit << min(c.tries, 6)
	return min(d, 64*time.Second)
}

// discover enters SELECTING: a new exchange, DISCOVER broadcast.
func (c *DHCPClient) discover() {
	c.stop(timerRetransmit)
	c.xid = newXID()
	c.offer, c.tries = nil, 0
	c.began = c.clock.Now()
	c.sent = c.began
	c.schedule(timerNoOffer, c.cfg.OfferTimeout)
	c.state = StateSelecting
	c.sendDiscover()
	c.setState(StateSelecting, nil)
}

func (c *DHCPClient) sendDiscover() {
	c.send(c.message(dhcpv4.MessageTypeDiscover), broadcast)
	c.schedule(timerRetransmit, c.backoff())
	c.tries++
}

func (c *DHCPClient) sendRequest() {
	m := c.message(dhcpv4.MessageTypeRequest)
	dst := broadcast
	switch c.state {
	case StateRequesting:
		m.UpdateOption(dhcpv4.OptRequestedIPAddress(c.offer.YourIPAddr))
		m.UpdateOption(dhcpv4.OptServerIdentifier(c.offer.ServerIdentifier()))
		c.schedule(timerRetransmit, c.backoff())
	case StateRenewing, StateRebinding:
		m.ClientIPAddr = net.IP(c.lease.Address.Addr().AsSlice())
		deadline := c.lease.ExpiresAt()
		if c.state == StateRenewing {
			if c.lease.Server.IsValid() {
				dst = c.lease.Server
			}
			deadline = c.lease.RebindAt()
		}
		// RFC 2131 4.4.5: wait half the time left. (Its floor of 60 s
		// would leave a short lease one try.)
		if wait := deadline.Sub(c.clock.Now()) / 2; wait >= time.Second {
			c.schedule(timerRetransmit, wait)
		}
	}
	c.send(m, dst)
	c.tries++
}

func (c *DHCPClient) send(m *dhcpv4.DHCPv4, dst netip.Addr) {
	if c.tries == 0 {
		c.sent = c.clock.Now()
	}
	secs := c.clock.Now().Sub(c.began) / time.Second
	m.NumSeconds = uint16(min(secs, 0xffff))
	// A failed send is a lost packet; the retransmission timer covers it.
	_ = c.conn.Send(m, dst)
}

// receive handles a reply of the current exchange.
func (c *DHCPClient) receive(m *dhcpv4.DHCPv4) {
	if m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != c.xid || m.ClientHWAddr.String() != c.hw.String() {
		return
	}
	switch t := m.MessageType(); {
	case c.state == StateSelecting && t == dhcpv4.MessageTypeOffer:
		if m.YourIPAddr.To4() == nil || m.YourIPAddr.IsUnspecified() || m.ServerIdentifier() == nil {
			return
		}
		c.stop(timerNoOffer)
		c.offer, c.tries = m, 0
		c.state = StateRequesting
		c.sendRequest()
		c.setState(StateRequesting, nil)
	case c.state == StateRequesting && !sameIP(m.ServerIdentifier(), c.offer.ServerIdentifier()):
		return
	case c.state != StateRequesting && c.state != StateRenewing && c.state != StateRebinding:
		return
	case t == dhcpv4.MessageTypeAck:
		c.bind(m)
	case t == dhcpv4.MessageTypeNak:
		err := ErrNAK
		if msg := m.Message(); msg != "" {
			err = fmt.Errorf("%w: %s", ErrNAK, msg)
		}
		c.drop()
		// Start over after a pause, so that a server that offers and
		// then refuses does not make the client spin.
		c.tries = 0
		c.schedule(timerRetransmit, c.cfg.Retransmit)
		c.setState(StateInit, err)
	}
}

// bind takes the lease an ACK grants and enters BOUND.
func (c *DHCPClient) bind(ack *dhcpv4.DHCPv4) {
	l, err := leaseFrom(ack, c.sent)
	if err != nil {
		return // unusable ACK: let the retransmission try again
	}
	old := c.lease
	c.lease = l
	c.stop(timerRetransmit)
	c.stop(timerNoOffer)
	now := c.clock.Now()
	c.schedule(timerT1, l.RenewAt().Sub(now))
	c.schedule(timerT2, l.RebindAt().Sub(now))
	c.schedule(timerExpiry, l.ExpiresAt().Sub(now))
	err = c.apply(old, l)
	c.setState(StateBound, err)
}

// drop forgets the lease and removes what it put into the kernel.
func (c *DHCPClient) drop() {
	for _, k := range []timerKind{timerT1, timerT2, timerExpiry, timerRetransmit} {
		c.stop(k)
	}
	if c.lease != nil {
		old := c.lease
		c.lease = nil
		_ = c.unapply(old) // best effort: the address's lifetime ends it anyway
	}
}

func (c *DHCPClient) timeout(k timerKind) {
	switch {
	case k == timerNoOffer && c.state == StateSelecting:
		c.setState(StateSelecting, fmt.Errorf("%w (%d DISCOVERs in %s)", ErrNoOffer, c.tries, c.clock.Now().Sub(c.began).Round(time.Millisecond)))
	case k == timerRetransmit && c.state == StateSelecting:
		c.sendDiscover()
	case k == timerRetransmit && c.state == StateInit:
		c.discover()
	case k == timerRetransmit && c.state == StateRequesting:
		if c.tries >= 4 {
			c.discover()
			return
		}
		c.sendRequest()
	case k == timerRetransmit && (c.state == StateRenewing || c.state == StateRebinding):
		c.sendRequest()
	case k == timerT1 && c.state == StateBound:
		c.enter(StateRenewing)
	case k == timerT2 && (c.state == StateBound || c.state == StateRenewing):
		c.enter(StateRebinding)
	case k == timerExpiry:
		c.drop()
		c.setState(StateInit, ErrLeaseExpired)
		c.discover()
	}
}

// enter starts a RENEWING or REBINDING exchange.
func (c *DHCPClient) enter(s State) {
	c.xid = newXID()
	c.tries = 0
	c.began = c.clock.Now()
	c.state = s
	c.sendRequest()
	c.setState(s, nil)
}

func (c *DHCPClient) renewNow() {
	switch c.state {
	case StateBound:
		c.enter(StateRenewing)
	case StateRenewing, StateRebinding, StateRequesting:
		c.sendRequest()
	default:
		c.discover()
	}
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func sameIP(a, b net.IP) bool { return a != nil && a.Equal(b) }

func newXID() dhcpv4.TransactionID {
	xid, err := dhcpv4.GenerateTransactionID()
	if err != nil {
		panic(fmt.Sprintf("cannot read random bytes: %v", err))
	}
	return xid
}
