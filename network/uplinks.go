package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ManagerOptions are the connections and knobs of a Manager.
type ManagerOptions struct {
	// Handle is bound to the namespace of the uplinks (netlink.NewHandle
	// for the agent's own, NewHandleAt for another).
	Handle *netlink.Handle
	// Namespace is where Handle is bound; nil for the agent's own. DHCP
	// sockets, pppd and the link watch are made in it.
	Namespace *netns.NsHandle
	// ResolvConf is the one file where the DNS servers of every uplink
	// (leases, static dns, PPPoE sessions) go, merged (see ResolvConf);
	// "" for nowhere.
	ResolvConf string
	// DNS, when set, is that file shared with the agent's other DHCP
	// client (the Wi-Fi link's), who made it: ResolvConf is then only
	// its path.
	DNS *ResolvConf
	// PPPoE fills in pppd's path, plugin folder, holdoff and extra
	// options of every session (its per-uplink fields are ignored).
	PPPoE PPPoEConfig
	// DHCPRetransmit is the DHCP client's first retransmission wait; 0
	// for RFC 2131's 4 s.
	DHCPRetransmit time.Duration
	Logger         *slog.Logger
	// OnEvent is called for every change of an uplink; it must not block
	// for long.
	OnEvent func(UplinkEvent)
	// Reapply runs what the manager does on its own (see Reapply); the
	// agent journals it. nil: the manager runs it directly.
	Reapply ReapplyFunc
	// DialBus connects to the bus wpa_supplicant is on, for the uplinks
	// with 802.1X; the manager dials once, at the first such uplink, and
	// again when that connection closed; it closes it in Close. The
	// connection must outlive the context given (no dbus.WithContext of
	// it). nil: 802.1X uplinks fail.
	DialBus func(context.Context) (*dbus.Conn, error)
}

// UplinkEvent is a change of one uplink: its link, its lease, its PPPoE
// session, or an apply.
type UplinkEvent struct {
	Uplink string       `json:"uplink"` // the uplink's link name
	Kind   string       `json:"kind"`   // "link", "dot1x", "dhcp", "pppoe", "removed", "reapply"
	Detail string       `json:"detail,omitempty"`
	DHCP   *Event       `json:"dhcp,omitempty"`
	PPPoE  *PPPoEStatus `json:"pppoe,omitempty"`
	Dot1X  *Dot1XStatus `json:"dot1x,omitempty"`
	Time   time.Time    `json:"time"`
}

// Manager brings the box's wired uplinks in line with a Config and keeps
// them so: Apply validates the whole table, then creates or replaces the
// links, runs a DHCP client per dhcp uplink, puts static addresses in
// place and runs pppd per pppoe uplink; it removes what the agent created
// for an uplink that left the table (its links carry the alias
// "boxagent:<name>", which outlives an agent restart). Watch re-applies
// when a link comes back and asks for a renewal when a carrier returns.
type Manager struct {
	o    ManagerOptions
	ns   netns.NsHandle
	nl   linker
	log  *slog.Logger
	emit func(UplinkEvent)
	dns  *ResolvConf // nil without ManagerOptions.ResolvConf

	applyMu sync.Mutex // one Apply or reconcile at a time

	mu      sync.Mutex
	cfg     Config
	applied bool
	runners map[string]*runner      // by link name
	carrier map[string]bool         // by link name, from the link watch
	lastErr map[string]error        // by link name: why the last apply of it failed
	pending reapplyWork             // what the link watch saw since its last re-apply
	kick    chan struct{}           // Watch's: wakes its re-apply loop (nil without Watch)
	leases  map[string]netip.Prefix // by link: the address of a DHCP uplink's lease at its last event (invalid: none)

	busMu sync.Mutex
	bus   *dbus.Conn // DialBus's, for 802.1X
}

// runner is what keeps one uplink's addressing going.
type runner struct {
	u       Uplink
	ifindex int
	cancel  context.CancelFunc
	done    chan struct{}
	dhcp    *DHCPClient
	ppp     *PPPoE
	dot1x   *dot1xSession // 802.1X before the DHCP client runs; nil without
	v6      *ipv6Runner   // nil unless [network.uplink.ipv6] asks for IPv6
	ppp6    *pppIPv6      // a pppoe uplink's IPv6, on its session's link
	exitErr error         // set before done closes
}

func (r *runner) exited() bool {
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// NewManager makes a Manager; it changes nothing until Apply.
func NewManager(o ManagerOptions) *Manager {
	ns := netns.None()
	if o.Namespace != nil {
		ns = *o.Namespace
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	emit := o.OnEvent
	if emit == nil {
		emit = func(UplinkEvent) {}
	}
	m := &Manager{
		o: o, ns: ns, nl: o.Handle, log: log.With("component", "network"), emit: emit,
		runners: map[string]*runner{}, carrier: map[string]bool{}, lastErr: map[string]error{},
		leases: map[string]netip.Prefix{},
	}
	m.dns = o.DNS
	if m.dns == nil && o.ResolvConf != "" {
		m.dns = NewResolvConf(o.ResolvConf)
	}
	return m
}

// ApplyResult says what an Apply did.
type ApplyResult struct {
	Uplinks []string `json:"uplinks"`           // links in place, by name
	Removed []string `json:"removed,omitempty"` // links or addressing removed
	Started []string `json:"started,omitempty"` // clients or sessions (re)started
}

// InvalidError is a refused Apply: every problem, nothing changed. It
// matches ErrInvalid.
type InvalidError struct{ Problems []FieldError }

func (e *InvalidError) Error() string {
	s := "invalid [network] settings: "
	for i, p := range e.Problems {
		if i > 0 {
			s += "; "
		}
		s += "network." + p.Key + ": " + p.Msg
	}
	return s
}

func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Check validates cfg against the box as it is now: the table's own rules,
// and that every parent link exists. Apply runs it first.
func (m *Manager) Check(cfg Config) error { return m.check(cfg, true) }

func (m *Manager) check(cfg Config, parents bool) error {
	probs := cfg.Problems()
	if len(probs) == 0 {
		for i, u := range cfg.Uplinks {
			key := fmt.Sprintf("uplink[%d]", i)
			if u.VLAN == nil && u.Name != "" && u.Name != u.Parent {
				probs = append(probs, FieldError{Key: key + ".name", Msg: fmt.Sprintf("an untagged uplink is its parent link %q: leave name out, or set vlan", u.Parent)})
				continue
			}
			if !parents {
				continue
			}
			l, err := linkByName(m.nl, u.Parent)
			if err != nil {
				return err
			}
			if l == nil {
				probs = append(probs, FieldError{Key: key + ".parent", Msg: fmt.Sprintf("no link %q on this box (ip -br link lists them)", u.Parent)})
			}
		}
	}
	if len(probs) > 0 {
		return &InvalidError{Problems: probs}
	}
	return nil
}

// Apply brings the uplinks in line with cfg: see Manager. An invalid cfg
// is refused whole with an *InvalidError and changes nothing. Failures of
// single uplinks (no 8021q: a *LinkError matching ErrNoVLANSupport) are
// returned joined, after every other uplink was applied.
func (m *Manager) Apply(ctx context.Context, cfg Config) (ApplyResult, error) {
	return m.apply(ctx, cfg, true)
}

// ApplyAtBoot is Apply for the table the agent starts with: an uplink
// whose parent is not there yet (a USB adapter, a driver still loading)
// waits for it, reported as down, and Watch applies it when the parent
// appears. Everything else is as Apply.
func (m *Manager) ApplyAtBoot(ctx context.Context, cfg Config) (ApplyResult, error) {
	return m.apply(ctx, cfg, false)
}

func (m *Manager) apply(ctx context.Context, cfg Config, parents bool) (ApplyResult, error) {
	if err := m.check(cfg, parents); err != nil {
		return ApplyResult{}, err
	}
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	m.cfg = cloneConfig(cfg)
	m.applied = true
	m.mu.Unlock()
	res, err := m.reconcile(ctx, true)
	if derr := m.dns.Sync(); derr != nil {
		// The uplinks are in place: a resolv.conf that cannot be
		// written is reported, not a reason to undo them.
		m.log.Warn("cannot write the DNS servers", "err", derr)
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok && !parents {
		// Uplinks waiting for their parent are no failure of this apply.
		var keep []error
		for _, e := range j.Unwrap() {
			if !errors.Is(e, ErrNoParent) {
				keep = append(keep, e)
			}
		}
		err = errors.Join(keep...)
	}
	return res, err
}

// ResolvConf is the manager's merged resolv.conf (nil without
// ManagerOptions.ResolvConf): another DHCP client of the agent (Wi-Fi)
// puts its lease's servers in the same file through DHCPConfig.DNS.
func (m *Manager) ResolvConf() *ResolvConf { return m.dns }

// Config is the table last applied.
func (m *Manager) Config() Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneConfig(m.cfg)
}

func cloneConfig(c Config) Config {
	out := Config{Uplinks: slices.Clone(c.Uplinks)}
	for i, u := range out.Uplinks {
		u.IPv4.Options = maps.Clone(u.IPv4.Options)
		u.IPv4.DNS = slices.Clone(u.IPv4.DNS)
		if u.Dot1X != nil {
			d := *u.Dot1X
			u.Dot1X = &d
		}
		u.IPv6.VendorOptions = maps.Clone(u.IPv6.VendorOptions)
		out.Uplinks[i] = u
	}
	return out
}

// reconcile puts the links and runners of m.cfg in place; full also
// removes the links and runners of uplinks that left it. Callers hold
// applyMu.
func (m *Manager) reconcile(ctx context.Context, full bool) (ApplyResult, error) {
	var res ApplyResult
	m.mu.Lock()
	cfg := m.cfg
	want := map[string]Uplink{}
	for _, u := range cfg.Uplinks {
		want[u.LinkName()] = u
	}
	// Runners of uplinks that left or changed stop first.
	var stop []*runner
	var left []string
	for name, r := range m.runners {
		if u, ok := want[name]; !ok || !reflect.DeepEqual(u, r.u) {
			stop = append(stop, r)
			delete(m.runners, name)
			if !ok {
				left = append(left, name)
				delete(m.lastErr, name)
			}
		}
	}
	m.mu.Unlock()
	for _, r := range stop {
		m.stopRunner(r, true)
		res.Removed = append(res.Removed, r.u.LinkName()+" ("+r.u.IPv4.Method+")")
	}

	var errs []error
	if full {
		links, err := retryDump("links", m.nl.LinkList)
		if err != nil {
			return res, err
		}
		for _, l := range links {
			name := l.Attrs().Name
			if owner := ownedBy(l); owner != "" && owner == name {
				if _, ok := want[name]; !ok {
					if err := m.nl.LinkDel(l); err != nil && !gone(err) {
						errs = append(errs, fmt.Errorf("cannot remove %s: %w", name, err))
						continue
					}
					m.log.Info("removed a link of a former uplink", "link", name)
					res.Removed = append(res.Removed, name)
					m.emit(UplinkEvent{Uplink: name, Kind: "removed", Detail: "the uplink left the config", Time: time.Now()})
				}
			}
		}
	}
	for _, name := range left {
		m.emit(UplinkEvent{Uplink: name, Kind: "removed", Detail: "addressing stopped", Time: time.Now()})
	}

	for _, u := range cfg.Uplinks {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		name := u.LinkName()
		started, err := m.applyUplink(ctx, u)
		m.mu.Lock()
		if err != nil {
			m.lastErr[name] = err
		} else {
			delete(m.lastErr, name)
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("cannot apply uplink", "link", name, "err", err)
			m.emit(UplinkEvent{Uplink: name, Kind: "link", Detail: err.Error(), Time: time.Now()})
			errs = append(errs, err)
			continue
		}
		res.Uplinks = append(res.Uplinks, name)
		if started {
			res.Started = append(res.Started, name+" ("+u.IPv4.Method+")")
		}
	}
	return res, errors.Join(errs...)
}

// applyUplink puts one uplink's link in place and starts its addressing
// unless it already runs on that very link. It says whether it started
// something.
func (m *Manager) applyUplink(ctx context.Context, u Uplink) (bool, error) {
	name := u.LinkName()
	link, err := EnsureLink(m.nl, u)
	if err != nil {
		return false, err
	}
	idx := link.Attrs().Index
	// Every apply: a link made anew starts at the kernel's choice.
	if v := u.IPv4.IGMPVersion; v != 0 {
		if err := setIGMPVersion(m.ns, idx, v); err != nil {
			return false, &LinkError{Link: name, Op: fmt.Sprintf("set IGMP version %d on", v), Err: err}
		}
	}
	m.mu.Lock()
	r := m.runners[name]
	if r != nil && r.ifindex == idx && !r.exited() && !r.dot1xPasswordChanged() {
		// The carrier is the link watch's to follow from here: setting
		// it now could swallow a change the watch is about to report.
		m.mu.Unlock()
		return false, nil
	}
	up := carrierUp(link.Attrs())
	changed := m.carrier[name] != up
	m.carrier[name] = up
	m.mu.Unlock()
	if err := m.dns.SetCarrier(name, up); err != nil {
		m.log.Warn("cannot write the DNS servers", "err", err)
	}
	if changed {
		// Told here, or never: the watch's update of this very change
		// finds the carrier already set (a veth whose peer is up has it
		// as soon as it is up).
		m.emit(UplinkEvent{Uplink: name, Kind: "link", Detail: carrierText(up), Time: time.Now()})
	}
	if r != nil {
		// The link was made anew (another index) or the client died.
		m.stopRunner(r, false)
	}
	r, err = m.startRunner(ctx, u, link)
	if err != nil {
		return false, fmt.Errorf("cannot start %s on %s: %w", u.IPv4.Method, name, err)
	}
	if u.IPv6.Configured() && u.IPv4.Method != MethodPPPoE { // a session's IPv6 starts with its IPV6CP (ipv6_pppoe.go)
		if r.v6, err = m.startIPv6(u, link, link.Attrs().HardwareAddr); err != nil {
			m.stopRunner(r, false)
			return false, fmt.Errorf("cannot start IPv6 on %s: %w", name, err)
		}
	}
	m.mu.Lock()
	m.runners[name] = r
	m.mu.Unlock()
	return true, nil
}

func (m *Manager) startRunner(ctx context.Context, u Uplink, link netlink.Link) (*runner, error) {
	name := u.LinkName()
	r := &runner{u: u, ifindex: link.Attrs().Index}
	switch u.IPv4.Method {
	case MethodOff:
		return r, nil
	case MethodStatic:
		return r, applyStatic(m.nl, u, m.dns)
	case MethodDHCP:
		cfg, err := DHCPConfigFor(u, m.o.ResolvConf)
		if err != nil {
			return nil, err
		}
		cfg.DNS = m.dns
		cfg.Retransmit = m.o.DHCPRetransmit
		if u.Dot1X != nil {
			if r.dot1x, err = m.startDot1X(ctx, r); err != nil {
				return nil, err
			}
		}
		conn, err := OpenRawConn(m.ns, r.ifindex)
		if err != nil {
			r.closeDot1X()
			return nil, err
		}
		m.mu.Lock()
		delete(m.leases, name) // the first lease of this client is no change
		m.mu.Unlock()
		r.dhcp = NewDHCPClient(m.nl, conn, cfg, func(e Event) {
			m.log.Info("dhcp", "link", name, "state", e.State.String(), "err", e.Err)
			m.emit(UplinkEvent{Uplink: name, Kind: "dhcp", DHCP: &e, Time: e.Time})
			m.leaseEvent(name, e)
		})
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan struct{})
		go func() {
			var err error
			if r.dot1x != nil {
				// No DHCP on a closed port: the first DISCOVER waits
				// for the authenticator.
				err = r.dot1x.WaitAuthorized(ctx)
			}
			if err == nil {
				err = r.dhcp.Run(ctx)
			} else {
				r.dhcp.conn.Close() // Run's to close, had it run
			}
			if ctx.Err() == nil {
				m.log.Warn("dhcp client stopped", "link", name, "err", err)
				r.exitErr = err
			}
			close(r.done)
		}()
		return r, nil
	case MethodPPPoE:
		cfg := PPPoEConfigFor(u)
		base := m.o.PPPoE
		cfg.PPPD, cfg.PluginDir, cfg.Holdoff, cfg.Extra, cfg.Restart = base.PPPD, base.PluginDir, base.Holdoff, base.Extra, base.Restart
		cfg.Runner, cfg.SocketDir = base.Runner, base.SocketDir
		cfg.Unit = m.freeUnit()
		cfg.ResolvConf, cfg.DNS = m.o.ResolvConf, m.dns
		if u.IPv6.Configured() {
			cfg.IPv6 = u.IPv6.Method != IPv6Off
			r.ppp6 = &pppIPv6{m: m, u: u, hw: link.Attrs().HardwareAddr}
		}
		p, err := StartPPPoE(name, m.ns, m.nl, cfg, m.log, func(e PPPoEEvent) {
			st := e.Status
			m.emit(UplinkEvent{Uplink: name, Kind: "pppoe", Detail: e.Line, PPPoE: &st, Time: time.Now()})
			r.ppp6.follow(st)
		})
		if err != nil {
			return nil, err
		}
		r.ppp = p
		return r, nil
	}
	return nil, fmt.Errorf("unknown method %q", u.IPv4.Method)
}

// freeUnit is the lowest ppp unit no session of the manager asked for.
func (m *Manager) freeUnit() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := map[int]bool{}
	for _, r := range m.runners {
		if r.ppp != nil {
			used[r.ppp.cfg.Unit] = true
		}
	}
	for n := 0; ; n++ {
		if !used[n] {
			return n
		}
	}
}

// stopRunner stops an uplink's client or session; unapply also removes
// the addressing it put in place (the uplink left the config or changed).
func (m *Manager) stopRunner(r *runner, unapply bool) {
	r.v6.stop(unapply)
	// A session's IPv6 stops after the session, whose events start it.
	defer r.ppp6.stop(unapply)
	switch {
	case r.dhcp != nil:
		r.cancel()
		<-r.done
		if unapply {
			if st := r.dhcp.Status(); st.Lease != nil {
				// Run has returned: the client is ours alone now.
				_ = r.dhcp.unapply(st.Lease)
			}
		}
		r.closeDot1X()
	case r.ppp != nil:
		r.ppp.Stop()
	case r.u.IPv4.Method == MethodStatic && unapply:
		if link, err := linkByName(m.nl, r.u.LinkName()); err == nil && link != nil {
			if a, err := staticApplied(link, r.u); err == nil {
				_ = a.remove(m.nl)
			}
		}
		if err := m.dns.Drop(r.u.LinkName()); err != nil {
			m.log.Warn("cannot write the DNS servers", "err", err)
		}
	}
}

// Close stops every client and session; addresses stay until their
// lifetimes end, links stay.
func (m *Manager) Close() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	rs := slices.Collect(maps.Values(m.runners))
	m.runners = map[string]*runner{}
	m.mu.Unlock()
	for _, r := range rs {
		m.stopRunner(r, false)
	}
	m.busMu.Lock()
	if m.bus != nil {
		m.bus.Close()
		m.bus = nil
	}
	m.busMu.Unlock()
}

// ErrNoUplink: Renew named a link that is not a DHCP uplink.
var ErrNoUplink = errors.New("no such DHCP uplink")

// Renew asks the DHCP client of link to renew its lease now (or to
// start discovery over without one).
func (m *Manager) Renew(link string) error {
	m.mu.Lock()
	r := m.runners[link]
	m.mu.Unlock()
	if r == nil || r.dhcp == nil {
		var names []string
		for _, u := range m.Config().Uplinks {
			if u.IPv4.Method == MethodDHCP {
				names = append(names, u.LinkName())
			}
		}
		return fmt.Errorf("%w %q (DHCP uplinks: %v)", ErrNoUplink, link, names)
	}
	r.dhcp.Renew()
	return nil
}

// staticApplied is what a static uplink puts on its link: its address,
// the default route through its gateway (unless default_route = false)
// and its static routes.
func staticApplied(link netlink.Link, u Uplink) (applied, error) {
	v := u.IPv4
	a := applied{link: link, metric: uint32(v.RouteMetric), proto: unix.RTPROT_STATIC}
	var err error
	if a.addr, err = netip.ParsePrefix(v.Address); err != nil {
		return a, fmt.Errorf("cannot use address: %w", err)
	}
	if v.Gateway != "" && v.CarriesDefaultRoute() {
		if a.router, err = netip.ParseAddr(v.Gateway); err != nil {
			return a, fmt.Errorf("cannot use gateway: %w", err)
		}
	}
	if a.extra, err = parseRoutes(v.Routes); err != nil {
		return a, fmt.Errorf("cannot use routes: %w", err)
	}
	return a, nil
}
