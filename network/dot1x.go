package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// States of Dot1XStatus.State.
const (
	// Dot1XStarting: wpa_supplicant drives the link; no EAP exchange yet.
	Dot1XStarting = "starting"
	// Dot1XAuthenticating: an EAP exchange runs; the port is closed.
	Dot1XAuthenticating = "authenticating"
	// Dot1XAuthorized: the authenticator opened the port.
	Dot1XAuthorized = "authorized"
	// Dot1XFailed: the last exchange ended in EAP-Failure (Reason says
	// why); wpa_supplicant starts again on its own after its held period,
	// or when the authenticator asks.
	Dot1XFailed = "failed"
	// Dot1XAbsent: wpa_supplicant left the bus (the session starts over
	// when it is back) or dropped the link.
	Dot1XAbsent = "absent"
)

// ErrDot1XNoSupplicant: wpa_supplicant is not on the bus, or cannot drive
// the link.
var ErrDot1XNoSupplicant = errors.New("wpa_supplicant cannot authenticate the link")

// Dot1XStatus is where an uplink's 802.1X authentication stands.
type Dot1XStatus struct {
	State string `json:"state"`
	EAP   string `json:"eap"` // the configured method
	// Method is the EAP method the authenticator and wpa_supplicant
	// agreed on ("MD5", "PEAP").
	Method string `json:"method,omitempty"`
	// Supplicant is wpa_supplicant's own state of the link.
	Supplicant string `json:"supplicant_state,omitempty"`
	// Reason is why the link is not authorized, or the last failure.
	Reason       string    `json:"reason,omitempty"`
	Since        time.Time `json:"since,omitzero"` // of State
	AuthorizedAt time.Time `json:"authorized_at,omitzero"`
	Successes    int       `json:"successes"`
	Failures     int       `json:"failures"`
}

// dot1xSession is one wired link driven by wpa_supplicant over D-Bus
// (driver "wired", no config file): one network of key_mgmt IEEE8021X,
// followed by the interface's State and EAP signals, never polled.
type dot1xSession struct {
	conn     *dbus.Conn
	path     dbus.ObjectPath // set by attach, on the signal goroutine after start
	link     string
	cfg      Dot1X
	password string
	log      *slog.Logger
	emit     func(Dot1XStatus)

	sig       chan *dbus.Signal
	done      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	st      Dot1XStatus
	changed chan struct{}
	// why is what the running exchange met that explains its failure
	// (a certificate that did not verify); "" for none.
	why string
}

// dot1xNetworkArgs is AddNetwork's argument: wpa_supplicant quotes the
// string fields itself (not key_mgmt and eap).
func dot1xNetworkArgs(d Dot1X, password string) map[string]dbus.Variant {
	a := map[string]dbus.Variant{
		"key_mgmt": dbus.MakeVariant("IEEE8021X"),
		"eap":      dbus.MakeVariant(strings.ToUpper(d.EAP)),
		"identity": dbus.MakeVariant(d.Identity),
		"password": dbus.MakeVariant(password),
		// Wired: no WEP keys follow the EAP exchange.
		"eapol_flags": dbus.MakeVariant(int32(0)),
	}
	if d.EAP == EAPPEAP {
		a["phase2"] = dbus.MakeVariant("auth=MSCHAPV2")
		set := func(key, v string) {
			if v != "" {
				a[key] = dbus.MakeVariant(v)
			}
		}
		set("anonymous_identity", d.AnonymousIdentity)
		set("ca_cert", d.CACert)
		set("client_cert", d.ClientCert)
		set("private_key", d.ClientKey)
	}
	return a
}

// startDot1X has wpa_supplicant authenticate link with cfg. A link
// wpa_supplicant already drives (an agent restart) is dropped and made
// again, so that only cfg's network is there.
func startDot1X(ctx context.Context, conn *dbus.Conn, link string, cfg Dot1X, log *slog.Logger, emit func(Dot1XStatus)) (*dot1xSession, error) {
	password, err := cfg.password()
	if err != nil {
		return nil, err
	}
	s := &dot1xSession{
		conn: conn, link: link, cfg: cfg, password: password, log: log.With("component", "dot1x", "link", link), emit: emit,
		sig: make(chan *dbus.Signal, 64), done: make(chan struct{}), loopDone: make(chan struct{}),
		changed: make(chan struct{}),
		st:      Dot1XStatus{State: Dot1XStarting, EAP: cfg.EAP, Since: time.Now()},
	}
	// Subscribe before anything is made, so no signal falls between.
	if err := wpabus.Follow(ctx, conn, s.sig); err != nil {
		return nil, err
	}
	if err := s.attach(ctx); err != nil {
		s.unsubscribe()
		return nil, err
	}
	go s.loop()
	return s, nil
}

func (s *dot1xSession) unsubscribe() { wpabus.Unfollow(s.conn, s.sig) }

// attach makes the interface and its one network, and reads its state.
func (s *dot1xSession) attach(ctx context.Context) error {
	cfg := s.cfg
	root := s.conn.Object(wpabus.Service, wpabus.Path)
	var old dbus.ObjectPath
	// The first call, not NameHasOwner: where wpa_supplicant is D-Bus
	// activatable (Debian's package), it starts it.
	err := root.CallWithContext(ctx, wpabus.Service+".GetInterface", 0, s.link).Store(&old)
	switch name := wpabus.ErrorName(err); {
	case err == nil:
		if err := root.CallWithContext(ctx, wpabus.Service+".RemoveInterface", 0, old).Err; err != nil {
			return fmt.Errorf("%w: cannot drop its former interface %s: %s", ErrDot1XNoSupplicant, s.link, wpabus.ErrorText(err))
		}
	case name == wpabus.Service+".InterfaceUnknown":
	case name == "org.freedesktop.DBus.Error.ServiceUnknown" || name == "org.freedesktop.DBus.Error.NameHasNoOwner":
		return fmt.Errorf("%w: it is not on the system bus (start it with -u)", ErrDot1XNoSupplicant)
	default:
		return fmt.Errorf("%w: %s", ErrDot1XNoSupplicant, wpabus.ErrorText(err))
	}
	args := map[string]dbus.Variant{"Ifname": dbus.MakeVariant(s.link), "Driver": dbus.MakeVariant("wired")}
	if err := root.CallWithContext(ctx, wpabus.Service+".CreateInterface", 0, args).Store(&s.path); err != nil {
		return fmt.Errorf("%w: cannot drive %s: %s", ErrDot1XNoSupplicant, s.link, wpabus.ErrorText(err))
	}
	obj := s.conn.Object(wpabus.Service, s.path)
	fail := func(what string, err error) error {
		s.remove(ctx)
		return fmt.Errorf("cannot %s on %s: %s", what, s.link, wpabus.ErrorText(err))
	}
	// Wired: no scanning, the driver "associates" at once.
	if err := obj.CallWithContext(ctx, wpabus.Props+".Set", 0, wpabus.Iface, "ApScan", dbus.MakeVariant(uint32(0))).Err; err != nil {
		return fail("set ap_scan 0", err)
	}
	var netPath dbus.ObjectPath
	if err := obj.CallWithContext(ctx, wpabus.Iface+".AddNetwork", 0, dot1xNetworkArgs(cfg, s.password)).Store(&netPath); err != nil {
		return fail("add the 802.1X network", err)
	}
	if err := obj.CallWithContext(ctx, wpabus.Iface+".SelectNetwork", 0, netPath).Err; err != nil {
		return fail("select the 802.1X network", err)
	}
	var st dbus.Variant
	if err := obj.CallWithContext(ctx, wpabus.Props+".Get", 0, wpabus.Iface, "State").Store(&st); err != nil {
		return fail("read the state", err)
	}
	s.log.Info("802.1X started", "eap", cfg.EAP, "path", s.path)
	s.mu.Lock()
	s.supplicantState(st.Value())
	s.mu.Unlock()
	return nil
}

// remove drops the interface from wpa_supplicant (it sends EAPOL-Logoff).
func (s *dot1xSession) remove(ctx context.Context) {
	err := s.conn.Object(wpabus.Service, wpabus.Path).CallWithContext(ctx, wpabus.Service+".RemoveInterface", 0, s.path).Err
	if err != nil && wpabus.ErrorName(err) != wpabus.Service+".InterfaceUnknown" {
		s.log.Warn("cannot remove the interface from wpa_supplicant", "err", wpabus.ErrorText(err))
	}
}

// Close stops following the link and has wpa_supplicant let it go.
func (s *dot1xSession) Close(ctx context.Context) {
	s.closeOnce.Do(func() {
		s.unsubscribe()
		close(s.done)
		<-s.loopDone
		s.remove(ctx)
	})
}

// Status is the authentication's state now.
func (s *dot1xSession) Status() Dot1XStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// WaitAuthorized returns when the port is authorized, at once if it is,
// or when ctx ends: failed exchanges do not end the wait (wpa_supplicant
// tries again), nor does wpa_supplicant gone (the session starts over
// when it is back).
func (s *dot1xSession) WaitAuthorized(ctx context.Context) error {
	for {
		s.mu.Lock()
		st, ch := s.st, s.changed
		s.mu.Unlock()
		if st.State == Dot1XAuthorized {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *dot1xSession) loop() {
	defer close(s.loopDone)
	for {
		select {
		case <-s.done:
			return
		case sig, ok := <-s.sig:
			if !ok {
				s.update(func() { s.set(Dot1XAbsent, "the system bus connection closed") })
				return
			}
			s.handle(sig)
		}
	}
}

// update runs f under mu and tells the change, if any.
func (s *dot1xSession) update(f func()) {
	s.mu.Lock()
	before := s.st
	f()
	after := s.st
	if after != before {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	if after != before {
		s.emit(after)
	}
}

// set moves to state with reason; call with mu held.
func (s *dot1xSession) set(state, reason string) {
	if s.st.State != state {
		s.st.Since = time.Now()
		s.log.Info("802.1X", "state", state, "reason", reason, "method", s.st.Method)
	}
	s.st.State, s.st.Reason = state, reason
	if state == Dot1XAuthorized {
		s.st.AuthorizedAt = s.st.Since
	}
}

// supplicantState follows the interface's State; call with mu held.
func (s *dot1xSession) supplicantState(v any) {
	st, ok := v.(string)
	if !ok {
		return
	}
	s.st.Supplicant = st
	switch st {
	case wpabus.StateCompleted:
		// The port is open: wpa_supplicant reaches completed on EAP
		// success (the EAP signal usually said so first).
		if s.st.State != Dot1XAuthorized {
			s.set(Dot1XAuthorized, "")
		}
	case "disconnected", "inactive", "interface_disabled":
		if s.st.State == Dot1XAuthorized || s.st.State == Dot1XAuthenticating {
			s.set(Dot1XStarting, "wpa_supplicant's link state is "+st)
		}
	}
}

// handle applies one signal; they come in order, one at a time.
func (s *dot1xSession) handle(sig *dbus.Signal) {
	switch sig.Name {
	case "org.freedesktop.DBus.NameOwnerChanged":
		if len(sig.Body) != 3 || sig.Body[0] != wpabus.Service {
			return
		}
		if sig.Body[2] == "" {
			s.update(func() { s.set(Dot1XAbsent, "wpa_supplicant left the bus") })
		} else {
			s.reattach()
		}
		return
	case wpabus.Service + ".InterfaceRemoved":
		if len(sig.Body) == 1 && sig.Body[0] == s.path {
			s.update(func() { s.set(Dot1XAbsent, "wpa_supplicant dropped the link") })
		}
		return
	}
	if sig.Path != s.path {
		return
	}
	switch sig.Name {
	case wpabus.Props + ".PropertiesChanged":
		if iface, _ := sig.Body[0].(string); iface == wpabus.Iface {
			changed, _ := sig.Body[1].(map[string]dbus.Variant)
			if v, ok := changed["State"]; ok {
				s.update(func() { s.supplicantState(v.Value()) })
			}
		}
	case wpabus.Iface + ".EAP":
		status, _ := sig.Body[0].(string)
		param, _ := sig.Body[1].(string)
		s.log.Debug("eap", "status", status, "parameter", param)
		s.update(func() { s.eap(status, param) })
	}
}

// reattach starts over with a wpa_supplicant back on the bus. It runs on
// the signal goroutine: the signals of the new interface wait in the
// channel until it knows the interface's path.
func (s *dot1xSession) reattach() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.update(func() { s.set(Dot1XStarting, "wpa_supplicant is back on the bus") })
	if err := s.attach(ctx); err != nil {
		s.log.Warn("cannot start 802.1X again", "err", err)
		s.update(func() { s.set(Dot1XAbsent, "wpa_supplicant is back but cannot drive the link: "+err.Error()) })
	}
}

// eap follows wpa_supplicant's EAP status signal; call with mu held.
func (s *dot1xSession) eap(status, param string) {
	switch status {
	case "started":
		// A re-authentication leaves the port open until it fails.
		s.why = ""
		if s.st.State != Dot1XAuthorized {
			s.set(Dot1XAuthenticating, s.st.Reason)
		}
	case "accept proposed method":
		s.st.Method = param
	case "remote certificate verification":
		if param != "success" {
			s.why = "the server's certificate does not verify against ca_cert (" + param + ")"
		}
	case "eap parameter needed":
		s.why = "wpa_supplicant asks for " + param
	case "completion":
		if param == "success" {
			s.st.Successes++
			s.set(Dot1XAuthorized, "")
			return
		}
		s.st.Failures++
		reason := s.why
		if reason == "" {
			reason = "the authenticator sent EAP-Failure"
			if s.st.Method != "" {
				reason = "EAP-" + s.st.Method + ": " + reason
			}
			reason += ": wrong identity or password, or the account is refused"
		}
		s.set(Dot1XFailed, reason)
	}
}

// Text is the state in words: "802.1X authorized (MD5)", "802.1X failed:
// …".
func (d Dot1XStatus) Text() string {
	s := "802.1X " + d.State
	if d.Method != "" {
		s += " (" + d.Method + ")"
	}
	if d.Reason != "" {
		s += ": " + d.Reason
	}
	return s
}

// dot1xBus is DialBus's connection, dialled at first use and again when
// it closed.
func (m *Manager) dot1xBus(ctx context.Context) (*dbus.Conn, error) {
	m.busMu.Lock()
	defer m.busMu.Unlock()
	if m.bus != nil && m.bus.Connected() {
		return m.bus, nil
	}
	if m.o.DialBus == nil {
		return nil, fmt.Errorf("%w: the agent has no bus to reach it", ErrDot1XNoSupplicant)
	}
	conn, err := m.o.DialBus(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot connect to the system bus: %w", ErrDot1XNoSupplicant, err)
	}
	sig := make(chan *dbus.Signal, 8)
	conn.Signal(sig)
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, wpabus.Service)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: cannot follow it on the bus: %w", ErrDot1XNoSupplicant, err)
	}
	go m.followSupplicant(sig)
	m.bus = conn
	return conn, nil
}

// followSupplicant has the link watch apply again the 802.1X uplinks that
// failed for want of wpa_supplicant when it comes on the bus (one that
// is not D-Bus activatable, started after the agent). It ends when the
// connection closes.
func (m *Manager) followSupplicant(sig chan *dbus.Signal) {
	for s := range sig {
		if s.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(s.Body) != 3 || s.Body[0] != wpabus.Service {
			continue
		}
		if owner, _ := s.Body[2].(string); owner == "" {
			continue
		}
		m.mu.Lock()
		waiting := false
		for _, u := range m.cfg.Uplinks {
			if link := u.LinkName(); u.Dot1X != nil && m.applied && errors.Is(m.lastErr[link], ErrDot1XNoSupplicant) {
				m.pending.add(link, "wpa_supplicant came on the bus", true)
				waiting = true
			}
		}
		kick := m.kick
		m.mu.Unlock()
		if waiting && kick != nil {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
}

// startDot1X starts r's authentication. Its changes go out as "dot1x"
// events; the port authorized again after it was lost has the DHCP
// client renew at once, as a carrier's return does (the authenticator
// may have moved the box to another VLAN or pool).
func (m *Manager) startDot1X(ctx context.Context, r *runner) (*dot1xSession, error) {
	conn, err := m.dot1xBus(ctx)
	if err != nil {
		return nil, err
	}
	name := r.u.LinkName()
	lost := false
	return startDot1X(ctx, conn, name, *r.u.Dot1X, m.log, func(st Dot1XStatus) {
		m.emit(UplinkEvent{Uplink: name, Kind: "dot1x", Detail: st.Text(), Dot1X: &st, Time: time.Now()})
		switch {
		case st.State != Dot1XAuthorized && st.Successes > 0:
			lost = true
		case st.State == Dot1XAuthorized && lost:
			lost = false
			m.mu.Lock()
			cur := m.runners[name]
			m.mu.Unlock()
			if cur == r && r.dhcp != nil {
				r.dhcp.Renew()
			}
		}
	})
}

// dot1xPasswordChanged says whether r's 802.1X password file holds
// another password than the one its session started with: an apply
// then starts the session over (a password rotated in its file is taken
// by net apply). An unreadable file changes nothing.
func (r *runner) dot1xPasswordChanged() bool {
	if r.dot1x == nil || r.u.Dot1X.PasswordFile == "" {
		return false
	}
	pw, err := r.u.Dot1X.password()
	return err == nil && pw != r.dot1x.password
}

// closeDot1X lets the link go in wpa_supplicant, if r had it.
func (r *runner) closeDot1X() {
	if r.dot1x == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.dot1x.Close(ctx)
}
