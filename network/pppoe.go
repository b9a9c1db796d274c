package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultPPPD is where Debian, Buildroot and Yocto install pppd.
const DefaultPPPD = "/usr/sbin/pppd"

// PPPoEConfig is one PPPoE session's settings; PPPoEConfigFor makes it
// from an uplink.
type PPPoEConfig struct {
	Link     string // the link PPPoE discovery runs on ("eth0.35")
	User     string
	Password string // handed to pppd through a pipe, never argv or a file
	Service  string // PPPoE service name; "" for any
	MTU      int    // mtu and mru; 0 for pppd's default
	// Unit asks pppd for interface ppp<Unit>; pppd takes another when it
	// is in use, and the session reports the one it got.
	Unit        int
	RouteMetric uint32
	// NoDefaultRoute: the session puts no default route on its link (the
	// uplink's default_route = false); Routes go there instead, on-link.
	NoDefaultRoute bool
	Routes         []Route
	// ResolvConf is where the DNS servers the concentrator hands out
	// (usepeerdns) are written; "" for nowhere. DNS, when set, takes
	// them instead.
	ResolvConf string
	// DNS is the resolv.conf the session shares with other uplinks (a
	// Manager's); nil: the session has ResolvConf to itself.
	DNS *ResolvConf

	PPPD string // "": DefaultPPPD
	// PluginDir holds pppd's plugins; "": pppd's own (its plugins given
	// by name: the folder is named after pppd's version, /usr/lib/pppd/2.4.9
	// on Debian 12, 2.5.x on Debian 13, Buildroot and Yocto).
	PluginDir string
	// Holdoff is the wait before pppd redials: 0 is 1 s (pppd's own
	// default, 30 s, makes a carrier restart cost half a minute).
	Holdoff time.Duration
	// Extra options for pppd (tests add "debug").
	Extra []string
	// Restart is the wait before pppd is started again when it exits
	// (it redials by itself while it runs: persist, maxfail 0). 0: 5 s.
	Restart time.Duration
	// Runner is how pppd runs: PPPDAuto (""), PPPDSystemd (an instance
	// of boxagent-pppoe@.service) or PPPDChild (the agent's child); see
	// ChoosePPPD.
	Runner string
	// SocketDir is where a unit's helper finds the agent's socket for the
	// session; "": DefaultPPPoESocketDir.
	SocketDir string
	// IPv6: pppd negotiates IPV6CP too (+ipv6); the link-local address it
	// gets starts the uplink's IPv6 on the PPP link (ipv6_pppoe.go).
	IPv6 bool
}

// PPPoEConfigFor makes the PPPoE settings of an uplink whose method is
// pppoe. u must be valid.
func PPPoEConfigFor(u Uplink) PPPoEConfig {
	v := u.IPv4
	return PPPoEConfig{
		Link: u.LinkName(), User: v.User, Password: v.Password, Service: v.Service,
		MTU: v.MTU, RouteMetric: uint32(v.RouteMetric), NoDefaultRoute: !v.CarriesDefaultRoute(),
		Routes: validRoutes(v.Routes),
	}
}

// validRoutes is the routes of a valid uplink (Config.Validate checked
// them).
func validRoutes(cs []RouteConfig) []Route {
	rs, _ := parseRoutes(cs)
	return rs
}

// args is pppd's command line, the password read from fd passwordFD:
// no secret in it.
func (c PPPoEConfig) args(passwordFD int) []string {
	plugin := func(name string) string {
		if c.PluginDir == "" {
			return name
		}
		return filepath.Join(c.PluginDir, name)
	}
	holdoff := max(int(c.Holdoff/time.Second), 1)
	a := []string{
		"plugin", plugin("pppoe.so"), "nic-" + c.Link,
		"user", c.User,
		"plugin", plugin("passwordfd.so"), "passwordfd", strconv.Itoa(passwordFD),
		"noauth", "nodetach", "persist", "maxfail", "0",
		"lcp-echo-interval", "1", "lcp-echo-failure", "3",
		"holdoff", strconv.Itoa(holdoff),
		// The agent sets the default route itself, with the uplink's
		// metric, once the session has an address.
		"nodefaultroute", "noipdefault", "hide-password", "usepeerdns",
		"unit", strconv.Itoa(c.Unit),
		"ip-up-script", "/bin/true", "ip-down-script", "/bin/true",
	}
	if c.IPv6 {
		// pppd 2.4.9 has no ipv6-up-script option (2.5 has): it runs
		// /etc/ppp/ipv6-up, Debian's run-parts of ipv6-up.d, if there.
		a = append(a, "+ipv6")
	}
	if c.Service != "" {
		a = append(a, "rp_pppoe_service", c.Service)
	}
	if c.MTU != 0 {
		a = append(a, "mtu", strconv.Itoa(c.MTU), "mru", strconv.Itoa(c.MTU))
	}
	return append(a, c.Extra...)
}

// PPPoEStatus is what `net show` says of a session.
type PPPoEStatus struct {
	Link     string       `json:"link"`             // the ppp link ("ppp0"), once pppd named it
	Up       bool         `json:"up"`               // the session has an address
	Address  netip.Addr   `json:"address,omitzero"` // ours
	Peer     netip.Addr   `json:"peer,omitzero"`    // the concentrator's
	Since    time.Time    `json:"since,omitzero"`   // of the last change of Up
	PID      int          `json:"pid,omitempty"`    // of pppd
	Starts   int          `json:"starts"`           // pppd processes started
	Connects int          `json:"connects"`         // sessions that came up
	DNS      []netip.Addr `json:"dns,omitempty"`    // from the concentrator
	// LinkLocal is the session's IPv6 link-local address from IPV6CP;
	// invalid without IPv6.
	LinkLocal netip.Addr `json:"ipv6_link_local,omitzero"`
	LastError string     `json:"last_error,omitempty"` // pppd's last complaint
}

// PPPoEEvent is a change of a session.
type PPPoEEvent struct {
	Uplink string      `json:"uplink"`
	Status PPPoEStatus `json:"status"`
	Line   string      `json:"line,omitempty"` // pppd's log line that told
}

// PPPoE runs pppd for one session and starts it again when it exits;
// pppd redials by itself (persist). Where pppd runs is its runner's
// business: under systemd as PID 1, an instance of boxagent-pppoe@.service per session
// (unitRunner: PID 1 supervises it, and the hardened agent needs neither
// root nor AF_PPPOX); otherwise a child bound to the agent (childRunner).
// Either way pppd's log comes back on a pipe and is read by line, so the
// status and events are the same.
type PPPoE struct {
	cfg    PPPoEConfig
	uplink string
	nl     Netlink
	log    *slog.Logger
	emit   func(PPPoEEvent)
	runner pppdRunner

	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	status PPPoEStatus
}

// StartPPPoE starts pppd for cfg in ns (netns.None() for the agent's
// own), and keeps it running until Stop. nl (bound to ns) sets the
// default route when the session is up. onEvent is called for each
// change, from the session's goroutines.
func StartPPPoE(uplink string, ns netns.NsHandle, nl Netlink, cfg PPPoEConfig, log *slog.Logger, onEvent func(PPPoEEvent)) (*PPPoE, error) {
	if cfg.PPPD == "" {
		cfg.PPPD = DefaultPPPD
	}
	if cfg.Restart <= 0 {
		cfg.Restart = 5 * time.Second
	}
	if _, err := os.Stat(cfg.PPPD); err != nil {
		return nil, fmt.Errorf("cannot run pppd: %w (Debian package ppp)", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onEvent == nil {
		onEvent = func(PPPoEEvent) {}
	}
	log = log.With("component", "pppd", "uplink", uplink)
	runner, err := newPPPDRunner(uplink, ns, cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &PPPoE{cfg: cfg, uplink: uplink, nl: nl, log: log, emit: onEvent, runner: runner, cancel: cancel, done: make(chan struct{})}
	go p.loop(ctx)
	return p, nil
}

// Status is the session's state now.
func (p *PPPoE) Status() PPPoEStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Stop ends pppd (it hangs up with PADT) and waits for it: the child's
// group gets SIGTERM, a unit is stopped by PID 1.
func (p *PPPoE) Stop() {
	p.cancel()
	<-p.done
	if err := p.resolv().Drop(p.uplink); err != nil {
		p.log.Warn("cannot write the DNS servers", "err", err)
	}
}

// resolv is where the session's DNS servers go.
func (p *PPPoE) resolv() *ResolvConf { return resolvFor(p.cfg.DNS, p.cfg.ResolvConf) }

func (p *PPPoE) loop(ctx context.Context) {
	defer close(p.done)
	for {
		err := p.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		// Told as an event: a pppd killed outside (SIGKILL, `systemctl
		// kill` of its unit) logged no hang-up line.
		p.update(err.Error(), func(s *PPPoEStatus) {
			s.PID, s.DNS, s.LastError = 0, nil, err.Error()
		})
		if err := p.resolv().Drop(p.uplink); err != nil {
			p.log.Warn("cannot write the DNS servers", "err", err)
		}
		p.log.Warn("pppd exited; starting it again", "err", err, "after", p.cfg.Restart)
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.cfg.Restart):
		}
	}
}

// runOnce runs one pppd until it exits or ctx ends. The password goes
// in through a pipe (no trailing newline: passwordfd.so takes every byte
// it reads, or CHAP fails), pppd's log comes back through another, and the
// runner (a child or a systemd unit) does the rest.
func (p *PPPoE) runOnce(ctx context.Context) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cannot make the password pipe: %w", err)
	}
	// The password (at most pppd's MAXSECRETLEN) fits in a pipe's buffer:
	// it is written whole before pppd starts.
	if _, err := io.WriteString(pw, p.cfg.Password); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("cannot write the password pipe: %w", err)
	}
	pw.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		pr.Close()
		return fmt.Errorf("cannot make pppd's output pipe: %w", err)
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		s := bufio.NewScanner(outR)
		for s.Scan() {
			p.line(s.Text())
		}
	}()
	args := p.cfg.args(p.runner.passwordFD())
	err = p.runner.run(ctx, args, pr, outW, func(pid int) {
		p.mu.Lock()
		p.status.PID = pid
		p.status.Starts++
		p.mu.Unlock()
		p.log.Info("pppd started", "pid", pid, "link", p.cfg.Link, "runner", p.runner.name())
	})
	// pppd is gone; its last lines are still in the pipe, unless something
	// else holds the write end open (PID 1 keeps a unit's until it unloads
	// it): then the reader is cut short.
	select {
	case <-lines:
	case <-time.After(2 * time.Second):
	}
	outR.Close()
	<-lines
	p.update("", func(s *PPPoEStatus) {
		if s.Up {
			s.Since = time.Now()
		}
		s.Up, s.Address, s.Peer = false, netip.Addr{}, netip.Addr{}
	})
	if err != nil {
		return fmt.Errorf("pppd: %w", err)
	}
	return errors.New("pppd exited")
}

// line follows pppd's log (nodetach: on its stdout).
func (p *PPPoE) line(l string) {
	p.log.Debug(l)
	switch {
	case strings.HasPrefix(l, "Using interface "):
		name := strings.TrimSpace(strings.TrimPrefix(l, "Using interface "))
		p.update(l, func(s *PPPoEStatus) { s.Link = name })
	case strings.HasPrefix(l, "local  IP address "):
		a, _ := netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(l, "local  IP address ")))
		p.mu.Lock()
		p.status.Address = a
		p.mu.Unlock()
	case strings.HasPrefix(l, "remote IP address "):
		a, _ := netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(l, "remote IP address ")))
		var st PPPoEStatus
		p.update(l, func(s *PPPoEStatus) {
			s.Peer, s.Up, s.Since, s.LastError = a, true, time.Now(), ""
			s.Connects++
			st = *s
		})
		p.log.Info("PPPoE session up", "link", st.Link, "address", st.Address, "peer", st.Peer)
		if err := p.defaultRoute(st.Link); err != nil {
			p.log.Warn("cannot set the default route", "err", err)
			p.update("", func(s *PPPoEStatus) { s.LastError = err.Error() })
		}
	case strings.HasPrefix(l, "local  LL address "):
		a, err := netip.ParseAddr(strings.TrimSpace(strings.TrimPrefix(l, "local  LL address ")))
		if err != nil {
			return
		}
		p.update(l, func(s *PPPoEStatus) { s.LinkLocal = a })
	case strings.HasPrefix(l, "primary   DNS address "), strings.HasPrefix(l, "secondary DNS address "):
		a, err := netip.ParseAddr(strings.TrimSpace(l[len("primary   DNS address "):]))
		if err != nil {
			return
		}
		var st PPPoEStatus
		p.update("", func(s *PPPoEStatus) {
			if strings.HasPrefix(l, "primary") {
				s.DNS = nil
			}
			s.DNS = append(s.DNS, a)
			st = *s
		})
		// Written before the event, so whoever hears it finds the file.
		if err := p.resolv().Set(DNSSource{Link: p.uplink, Method: MethodPPPoE, Metric: p.cfg.RouteMetric, Servers: st.DNS}); err != nil {
			p.log.Warn("cannot write the DNS servers", "err", err)
		}
		p.emit(PPPoEEvent{Uplink: p.uplink, Status: st, Line: l})
	case strings.HasPrefix(l, "Connection terminated"), strings.HasPrefix(l, "Modem hangup"),
		strings.HasPrefix(l, "LCP terminated"), strings.HasPrefix(l, "No response to "):
		p.update(l, func(s *PPPoEStatus) {
			if s.Up {
				s.Since = time.Now()
			}
			s.Up, s.Address, s.Peer, s.DNS, s.LinkLocal = false, netip.Addr{}, netip.Addr{}, nil, netip.Addr{}
			s.LastError = l
		})
		// The concentrator's servers are reachable through the session only.
		if err := p.resolv().Drop(p.uplink); err != nil {
			p.log.Warn("cannot write the DNS servers", "err", err)
		}
		p.log.Info("PPPoE session down", "why", l)
	case strings.Contains(l, "authentication failed"), strings.Contains(l, "Timeout waiting for PADO"),
		strings.Contains(l, "Unable to complete PPPoE Discovery"), strings.HasPrefix(l, "Interface ") && strings.Contains(l, "not"):
		p.update(l, func(s *PPPoEStatus) { s.LastError = l })
		p.log.Warn("PPPoE", "problem", l)
	}
}

// update changes the status and reports it (when line is not "").
func (p *PPPoE) update(line string, f func(*PPPoEStatus)) {
	p.mu.Lock()
	f(&p.status)
	st := p.status
	p.mu.Unlock()
	if line != "" {
		p.emit(PPPoEEvent{Uplink: p.uplink, Status: st, Line: line})
	}
}

// defaultRoute points the default route at the session's link with the
// uplink's metric (pppd's own defaultroute refuses when any default
// route exists).
func (p *PPPoE) defaultRoute(link string) error {
	if p.nl == nil || link == "" {
		return nil
	}
	l, err := p.nl.LinkByName(link)
	if err != nil {
		return fmt.Errorf("cannot find %s: %w", link, err)
	}
	var rs []*netlink.Route
	if !p.cfg.NoDefaultRoute {
		rs = append(rs, &netlink.Route{
			LinkIndex: l.Attrs().Index,
			Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			Scope:     netlink.SCOPE_LINK,
			Priority:  int(p.cfg.RouteMetric),
			Protocol:  unix.RTPROT_BOOT,
			Family:    netlink.FAMILY_V4,
		})
	}
	for _, r := range p.cfg.Routes {
		// A point-to-point link: every route is on it.
		rs = append(rs, Route{To: r.To}.netlinkRoute(l.Attrs().Index, nil, p.cfg.RouteMetric, unix.RTPROT_BOOT))
	}
	for _, r := range rs {
		if err := p.nl.RouteReplace(r); err != nil {
			return fmt.Errorf("cannot set route %s on %s: %w", routeText(r), link, err)
		}
	}
	return nil
}
