package network

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"

	"github.com/godbus/dbus/v5"
)

// systemd-resolved's bus name and manager object.
const (
	resolvedName   = "org.freedesktop.resolve1"
	resolvedPath   = "/org/freedesktop/resolve1"
	resolvedMgr    = "org.freedesktop.resolve1.Manager"
	busDaemonName  = "org.freedesktop.DBus"
	nameOwnerEvent = "org.freedesktop.DBus.NameOwnerChanged"
)

// Resolved hands each uplink's DNS servers and search domains to
// systemd-resolved, per link, over D-Bus (SetLinkDNS, SetLinkDomains;
// RevertLink when the uplink has none left): where resolved runs,
// /etc/resolv.conf is its stub and the agent's own file is read by
// nobody. It follows resolved on the bus (NameOwnerChanged): when
// resolved starts or restarts it has forgotten every link, and it is
// told them all again. Publish never waits: the latest sources are sent
// by Run, so a slow bus never holds an uplink's lease.
type Resolved struct {
	conn *dbus.Conn
	log  *slog.Logger

	mu      sync.Mutex
	want    map[string]DNSSource // by link: the latest Publish
	sent    map[string]DNSSource // what resolved was told, by link
	present bool                 // resolved owns its name
	lastErr error
	kick    chan struct{}
}

// NewResolved drives systemd-resolved over conn (the system bus). Run
// does the work.
func NewResolved(conn *dbus.Conn, log *slog.Logger) *Resolved {
	return &Resolved{conn: conn, log: log, want: map[string]DNSSource{}, sent: map[string]DNSSource{}, kick: make(chan struct{}, 1)}
}

// Publish sets the sources resolved should have, one per link (those
// without carrier left out, as ResolvConf.Sources gives them).
func (r *Resolved) Publish(sources []DNSSource) {
	want := make(map[string]DNSSource, len(sources))
	for _, s := range sources {
		want[s.Link] = s
	}
	r.mu.Lock()
	r.want = want
	r.mu.Unlock()
	r.nudge()
}

func (r *Resolved) nudge() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// ResolvedState is what the doctor and status say of resolved.
type ResolvedState struct {
	Present bool   // resolved owns its name on the bus
	Links   int    // links it was told of
	Err     string // the last call that failed, if the next has not succeeded
}

// State is resolved's presence and the last error.
func (r *Resolved) State() ResolvedState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ResolvedState{Present: r.present, Links: len(r.sent)}
	if r.lastErr != nil {
		s.Err = r.lastErr.Error()
	}
	return s
}

// Run follows resolved on the bus and sends it each change of the
// sources until ctx ends. It returns an error only when it cannot
// subscribe to the bus.
func (r *Resolved) Run(ctx context.Context) error {
	sigs := make(chan *dbus.Signal, 16)
	r.conn.Signal(sigs)
	defer r.conn.RemoveSignal(sigs)
	match := []dbus.MatchOption{dbus.WithMatchSender(busDaemonName), dbus.WithMatchInterface(busDaemonName),
		dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, resolvedName)}
	if err := r.conn.AddMatchSignalContext(ctx, match...); err != nil {
		return fmt.Errorf("cannot follow %s on the bus: %w", resolvedName, err)
	}
	defer r.conn.RemoveMatchSignal(match...)
	var has bool
	if err := r.conn.BusObject().CallWithContext(ctx, busDaemonName+".NameHasOwner", 0, resolvedName).Store(&has); err != nil {
		return fmt.Errorf("cannot ask the bus for %s: %w", resolvedName, err)
	}
	r.setPresent(has)
	for {
		r.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case s, ok := <-sigs:
			if !ok {
				return nil
			}
			if s.Name != nameOwnerEvent || len(s.Body) != 3 || s.Body[0] != resolvedName {
				continue
			}
			owner, _ := s.Body[2].(string)
			r.setPresent(owner != "")
		}
	}
}

// setPresent records resolved's presence; a new owner knows nothing of
// the links, so everything is sent again.
func (r *Resolved) setPresent(has bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if has != r.present {
		r.log.Info("systemd-resolved on the bus", "present", has)
	}
	r.present = has
	r.sent = map[string]DNSSource{}
	r.lastErr = nil
}

// sync sends resolved what changed since it was last told.
func (r *Resolved) sync(ctx context.Context) {
	r.mu.Lock()
	if !r.present {
		r.mu.Unlock()
		return
	}
	want, sent := maps.Clone(r.want), maps.Clone(r.sent)
	r.mu.Unlock()
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, link := range slices.Sorted(maps.Keys(want)) {
		s := want[link]
		if old, ok := sent[link]; ok && sameDNS(old, s) {
			continue
		}
		err := r.setLink(ctx, s)
		note(err)
		if err == nil {
			sent[link] = s
		}
	}
	for _, link := range slices.Sorted(maps.Keys(sent)) {
		if _, ok := want[link]; ok {
			continue
		}
		err := r.revertLink(ctx, link)
		note(err)
		if err == nil {
			delete(sent, link)
		}
	}
	r.mu.Lock()
	r.sent, r.lastErr = sent, firstErr
	r.mu.Unlock()
}

func sameDNS(a, b DNSSource) bool {
	return slices.Equal(a.Servers, b.Servers) && slices.Equal(a.Search, b.Search)
}

// resolvedAddr is SetLinkDNS's (iay): an address family and its bytes.
type resolvedAddr struct {
	Family  int32
	Address []byte
}

// resolvedDomain is SetLinkDomains's (sb): a domain and whether it only
// routes queries (false: it is also a search domain).
type resolvedDomain struct {
	Domain    string
	RouteOnly bool
}

func (r *Resolved) setLink(ctx context.Context, s DNSSource) error {
	idx, err := linkIndex(s.Link)
	if err != nil {
		// The link left (a PPPoE session ended): resolved dropped it too.
		r.log.Debug("link for resolved is gone", "link", s.Link, "err", err)
		return nil
	}
	addrs := make([]resolvedAddr, 0, len(s.Servers))
	for _, a := range s.Servers {
		a = a.Unmap()
		fam := int32(2) // AF_INET
		if a.Is6() {
			fam = 10 // AF_INET6
		}
		addrs = append(addrs, resolvedAddr{fam, a.AsSlice()})
	}
	doms := make([]resolvedDomain, 0, len(s.Search))
	for _, d := range s.Search {
		if validSearchDomain(d) {
			doms = append(doms, resolvedDomain{d, false})
		}
	}
	obj := r.conn.Object(resolvedName, resolvedPath)
	if err := obj.CallWithContext(ctx, resolvedMgr+".SetLinkDNS", 0, int32(idx), addrs).Err; err != nil {
		return fmt.Errorf("cannot give systemd-resolved the DNS servers of %s: %w", s.Link, err)
	}
	if err := obj.CallWithContext(ctx, resolvedMgr+".SetLinkDomains", 0, int32(idx), doms).Err; err != nil {
		return fmt.Errorf("cannot give systemd-resolved the search domains of %s: %w", s.Link, err)
	}
	r.log.Info("DNS of an uplink handed to systemd-resolved", "link", s.Link, "servers", s.Servers, "search", s.Search)
	return nil
}

func (r *Resolved) revertLink(ctx context.Context, link string) error {
	idx, err := linkIndex(link)
	if err != nil {
		return nil // gone, and resolved with it
	}
	if err := r.conn.Object(resolvedName, resolvedPath).CallWithContext(ctx, resolvedMgr+".RevertLink", 0, int32(idx)).Err; err != nil {
		return fmt.Errorf("cannot take the DNS servers of %s back from systemd-resolved: %w", link, err)
	}
	r.log.Info("DNS of an uplink taken back from systemd-resolved", "link", link)
	return nil
}

func linkIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}
