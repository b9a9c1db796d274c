package wifi

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/names"
	"github.com/boxagent/boxagent/internal/wpabus"
)

// SupplicantName is wpa_supplicant's name on the system bus.
const SupplicantName = wpabus.Service

// Errors of the Wi-Fi client; a *Error wraps one of them.
var (
	ErrNoSupplicant   = errors.New("wpa_supplicant is not on the system bus")
	ErrNoInterface    = errors.New("no such wireless interface")
	ErrWrongPassword  = errors.New("wrong password")
	ErrNotFound       = errors.New("network not found")
	ErrRejected       = errors.New("rejected by AP")
	ErrTimeout        = errors.New("timed out")
	ErrNotConnected   = errors.New("not connected")
	ErrUnknownNetwork = errors.New("not a known network")
	ErrScanFailed     = errors.New("scan failed")
)

// Error is a failed Wi-Fi operation: what was tried, why it failed
// (one of the Err… errors above), and details such as wpa_supplicant's own
// words or the AP's status code.
type Error struct {
	Op     string // "join \"home\"", "scan"
	Err    error
	Detail string
}

func (e *Error) Error() string {
	s := "cannot " + e.Op + ": " + e.Err.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Options configure Open.
type Options struct {
	// Interface is the wireless link wpa_supplicant drives, e.g. "wlan0".
	Interface string
	// Driver is wpa_supplicant's driver for CreateInterface; default
	// "nl80211".
	Driver string
	Logger *slog.Logger
	// OnEvent gets state changes, scan results and drops, in order, from
	// the goroutine that follows wpa_supplicant's signals: it must not
	// block.
	OnEvent func(Event)
	// OnBSS, when set, gets every BSS wpa_supplicant adds to its list
	// (BSSAdded), from the same goroutine as OnEvent: it must not block.
	OnBSS func(BSS)
	// OnChange, when set, is called whenever what Status says may have
	// changed (every signal of the interface or its BSSs handled, and the
	// interface's loss), with the client's lock held: it must only take
	// note (Status may be asked afterwards, not from it).
	OnChange func()
	// Rejoin, when true, re-enables every known network when the link
	// drops, so wpa_supplicant joins the best one in range (highest
	// priority, then signal) rather than waiting for the one selected last.
	Rejoin bool
}

// Event is a change of the Wi-Fi link, as published to the agent's
// event stream.
type Event struct {
	// Kind: "state" (State changed), "scan" (a scan ended, Count BSSs),
	// "dropped" (the link was lost: Reason), "rejoin" (known networks
	// re-enabled after a drop), "gone" (wpa_supplicant or the interface
	// went away).
	Kind   string `json:"kind"`
	State  string `json:"state,omitempty"`
	SSID   string `json:"ssid,omitempty"`
	BSSID  string `json:"bssid,omitempty"`
	Reason string `json:"reason,omitempty"`
	Count  int    `json:"count,omitempty"`
}

// Status is the interface's state and the network it is on.
type Status struct {
	Interface string `json:"interface"`
	State     string `json:"state"`
	SSID      string `json:"ssid,omitempty"`
	BSSID     string `json:"bssid,omitempty"`
	Frequency int    `json:"frequency_mhz,omitempty"`
	Band      string `json:"band,omitempty"`
	Security  string `json:"security,omitempty"`
	// Signal is the current AP's signal from the last scan or beacon.
	Signal int `json:"signal_dbm,omitempty"`
	// LastDisconnect explains the last drop, if any.
	LastDisconnect string `json:"last_disconnect,omitempty"`
	// Known lists the networks wpa_supplicant holds, saved or joined.
	Known []Known `json:"known,omitempty"`
	// Address is the link's IPv4 address with its prefix length, from
	// the agent's DHCP client, when it has one.
	Address string `json:"address,omitempty"`
	// Link is a SignalPoll, when the caller asked for one.
	Link *Signal `json:"link,omitempty"`
	// Country is the kernel's regulatory domain now ("DE"; "00" is the
	// world domain), when the caller read it; CountryConfigured is
	// [wifi] country, when set. They differ when the kernel did not
	// apply it (the doctor says why).
	Country           string `json:"country,omitempty"`
	CountryConfigured string `json:"country_configured,omitempty"`
}

// Known is a network wpa_supplicant holds.
type Known struct {
	SSID     string `json:"ssid"`
	Priority int    `json:"priority,omitempty"`
	// Saved is true for networks of the config file.
	Saved bool `json:"saved,omitempty"`
}

// Signal is a SignalPoll of the current link.
type Signal struct {
	RSSI      int    `json:"rssi_dbm"`
	AvgRSSI   int    `json:"avg_rssi_dbm,omitempty"`
	Noise     int    `json:"noise_dbm,omitempty"`
	LinkSpeed int    `json:"link_speed_mbps,omitempty"`
	Frequency int    `json:"frequency_mhz,omitempty"`
	Width     string `json:"width,omitempty"`
}

// wifiState is what the signals keep current. The counters let a waiter
// see events that happened since it looked, however briefly they lasted.
type wifiState struct {
	state      string
	scanning   bool
	currentBSS dbus.ObjectPath
	currentNet dbus.ObjectPath
	gone       bool

	scans, pskMismatch, authFails, assocFails, disconnects int
	scanOK                                                 bool
	lastReason, lastAuth, lastAssoc                        int
	everCompleted                                          bool
	// linked is true from completed until the first state that is
	// neither completed nor part of joining.
	linked bool
}

// wifiNet is a network object wpa_supplicant holds for us.
type wifiNet struct {
	path dbus.ObjectPath
	net  Network // the PSK is kept in memory only, to tell changes
	// saved: pushed from the config file; else joined through Connect or
	// found in wpa_supplicant at start.
	saved bool
}

// Client drives one wireless interface through wpa_supplicant's D-Bus API.
// Its state is kept current from wpa_supplicant's signals, never polled.
// The connection is the caller's; it should deliver signals in order
// (dbus.WithSignalHandler(dbus.NewSequentialSignalHandler())).
type Client struct {
	conn   *dbus.Conn
	obj    dbus.BusObject
	path   dbus.ObjectPath
	ifname string
	log    *slog.Logger
	emit   func(Event)
	onBSS  func(BSS)
	rejoin bool

	sig       chan *dbus.Signal
	done      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once

	// opMu serialises the calls that change the network list.
	opMu sync.Mutex

	mu       sync.Mutex
	st       wifiState
	bss      map[dbus.ObjectPath]*BSS
	nets     map[string]*wifiNet // by SSID
	changed  chan struct{}
	onChange func() // Options.OnChange, called by notify
	joining  bool   // a Connect is running: drops are its business
}

// Open finds (or asks wpa_supplicant to create) the interface and
// starts following its signals until Close. It fails with
// ErrNoSupplicant when wpa_supplicant is not on the bus and
// ErrNoInterface when it cannot drive the interface.
func Open(ctx context.Context, conn *dbus.Conn, o Options) (*Client, error) {
	if o.Driver == "" {
		o.Driver = "nl80211"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	if msg := names.LinkNameProblem(o.Interface); o.Interface == "" || msg != "" {
		return nil, &Error{Op: "open the Wi-Fi interface", Err: ErrNoInterface, Detail: cmp.Or(msg, "no interface named")}
	}
	has, err := wpabus.OnBus(ctx, conn)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, &Error{Op: "open " + o.Interface, Err: ErrNoSupplicant, Detail: "start it with -u (D-Bus)"}
	}
	w := &Client{
		conn: conn, ifname: o.Interface, log: o.Logger.With("component", "wifi", "interface", o.Interface),
		emit: o.OnEvent, onBSS: o.OnBSS, onChange: o.OnChange, rejoin: o.Rejoin,
		sig: make(chan *dbus.Signal, 64), done: make(chan struct{}), loopDone: make(chan struct{}),
		bss: map[dbus.ObjectPath]*BSS{}, nets: map[string]*wifiNet{}, changed: make(chan struct{}),
	}
	// Subscribe before reading anything, so no change falls between.
	if err := wpabus.Follow(ctx, conn, w.sig); err != nil {
		return nil, err
	}
	if err := w.attach(ctx, o.Driver); err != nil {
		w.unsubscribe()
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *Client) unsubscribe() { wpabus.Unfollow(w.conn, w.sig) }

// attach gets the interface object and reads its state and BSS list.
func (w *Client) attach(ctx context.Context, driver string) error {
	root := w.conn.Object(wpabus.Service, wpabus.Path)
	err := root.CallWithContext(ctx, wpabus.Service+".GetInterface", 0, w.ifname).Store(&w.path)
	if wpabus.ErrorName(err) == wpabus.Service+".InterfaceUnknown" {
		args := map[string]dbus.Variant{"Ifname": dbus.MakeVariant(w.ifname), "Driver": dbus.MakeVariant(driver)}
		err = root.CallWithContext(ctx, wpabus.Service+".CreateInterface", 0, args).Store(&w.path)
		if err != nil {
			return &Error{Op: "open " + w.ifname, Err: ErrNoInterface, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
		}
		w.log.Info("interface created in wpa_supplicant", "path", w.path)
	} else if err != nil {
		return &Error{Op: "open " + w.ifname, Err: ErrNoSupplicant, Detail: wpabus.ErrorText(err)}
	}
	w.obj = w.conn.Object(wpabus.Service, w.path)
	var props map[string]dbus.Variant
	if err := w.obj.CallWithContext(ctx, wpabus.Props+".GetAll", 0, wpabus.Iface).Store(&props); err != nil {
		return fmt.Errorf("cannot read %s's state from wpa_supplicant: %w", w.ifname, err)
	}
	bssPaths, _ := props["BSSs"].Value().([]dbus.ObjectPath)
	netPaths, _ := props["Networks"].Value().([]dbus.ObjectPath)
	bss := map[dbus.ObjectPath]*BSS{}
	for _, p := range bssPaths {
		var bp map[string]dbus.Variant
		if err := w.conn.Object(wpabus.Service, p).CallWithContext(ctx, wpabus.Props+".GetAll", 0, wpabus.BSSIface).Store(&bp); err != nil {
			continue // gone meanwhile; its BSSRemoved is queued
		}
		b := &BSS{path: p}
		parseBSS(b, bp)
		bss[p] = b
	}
	nets := map[string]*wifiNet{}
	for _, p := range netPaths {
		var np map[string]dbus.Variant
		if err := w.conn.Object(wpabus.Service, p).CallWithContext(ctx, wpabus.Props+".Get", 0, wpabus.NetworkIface, "Properties").Store(&np); err != nil {
			continue
		}
		cfg, _ := np["ssid"].Value().(string)
		ssid, ok := unquoteSSID(cfg)
		if !ok {
			continue
		}
		prio, _ := strconv.Atoi(fmt.Sprint(np["priority"].Value()))
		nets[ssid] = &wifiNet{path: p, net: Network{SSID: ssid, Priority: prio}}
	}
	w.mu.Lock()
	w.bss, w.nets = bss, nets
	w.applyIface(props)
	w.mu.Unlock()
	return nil
}

// unquoteSSID reads an ssid as wpa_supplicant's config holds it: quoted
// text or hex digits.
func unquoteSSID(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1], true
	}
	b, err := hex.DecodeString(s)
	return string(b), err == nil && len(b) > 0
}

// Close stops following the interface; wpa_supplicant keeps it and its
// networks. It does not close the connection.
func (w *Client) Close() {
	w.closeOnce.Do(func() {
		w.unsubscribe()
		close(w.done)
		<-w.loopDone
	})
}

// Interface is the wireless link's name.
func (w *Client) Interface() string { return w.ifname }

func (w *Client) loop() {
	defer close(w.loopDone)
	for {
		select {
		case <-w.done:
			return
		case s, ok := <-w.sig:
			if !ok {
				w.markGone("the system bus connection closed")
				return
			}
			w.handle(s)
		}
	}
}

// notify wakes the waiters; call with mu held.
func (w *Client) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
	if w.onChange != nil {
		w.onChange()
	}
}

func (w *Client) markGone(why string) {
	w.mu.Lock()
	already := w.st.gone
	w.st.gone, w.st.state = true, StateAbsent
	w.notify()
	w.mu.Unlock()
	if !already {
		w.log.Warn("wpa_supplicant interface gone", "why", why)
		w.emit(Event{Kind: "gone", State: StateAbsent, Reason: why})
	}
}

// handle applies one signal. Signals arrive in order, one at a time.
func (w *Client) handle(s *dbus.Signal) {
	switch s.Name {
	case "org.freedesktop.DBus.NameOwnerChanged":
		if len(s.Body) == 3 && s.Body[0] == wpabus.Service && s.Body[2] == "" {
			w.markGone("wpa_supplicant left the bus")
		}
		return
	case wpabus.Service + ".InterfaceRemoved":
		if len(s.Body) == 1 && s.Body[0] == w.path {
			w.markGone("wpa_supplicant removed the interface")
		}
		return
	}
	if s.Path != w.path && !strings.HasPrefix(string(s.Path), string(w.path)+"/") {
		return
	}
	var events []Event
	var added *BSS
	w.mu.Lock()
	switch s.Name {
	case wpabus.Props + ".PropertiesChanged":
		iface, _ := s.Body[0].(string)
		changed, _ := s.Body[1].(map[string]dbus.Variant)
		switch {
		case iface == wpabus.Iface && s.Path == w.path:
			if w.log.Enabled(context.Background(), slog.LevelDebug) {
				w.log.Debug("interface properties changed", "props", wifiPropsText(changed))
			}
			events = w.applyIface(changed)
		case iface == wpabus.BSSIface:
			if b, ok := w.bss[s.Path]; ok {
				parseBSS(b, changed)
			}
		}
	case wpabus.Iface + ".BSSAdded":
		p, _ := s.Body[0].(dbus.ObjectPath)
		props, _ := s.Body[1].(map[string]dbus.Variant)
		b := &BSS{path: p}
		parseBSS(b, props)
		w.bss[p] = b
		if w.onBSS != nil {
			c := *b
			added = &c
		}
	case wpabus.Iface + ".BSSRemoved":
		p, _ := s.Body[0].(dbus.ObjectPath)
		delete(w.bss, p)
	case wpabus.Iface + ".ScanDone":
		w.st.scans++
		w.st.scanOK, _ = s.Body[0].(bool)
		events = append(events, Event{Kind: "scan", State: w.st.state, Count: len(w.bss)})
	case wpabus.Iface + ".PskMismatch":
		w.st.pskMismatch++
	case wpabus.Iface + ".NetworkRemoved":
		p, _ := s.Body[0].(dbus.ObjectPath)
		for ssid, n := range w.nets {
			if n.path == p {
				delete(w.nets, ssid)
			}
		}
	}
	w.mu.Unlock()
	if added != nil {
		w.onBSS(*added)
	}
	if wifiHasKind(events, "state") {
		// CurrentNetwork and CurrentBSS do not always come with the
		// State they belong to: read them at each state change.
		w.refreshCurrent()
	}
	w.mu.Lock()
	w.notify()
	rejoin := false
	for i, e := range events {
		if e.Kind == "dropped" && w.rejoin && !w.joining {
			rejoin = true
		}
		if b := w.currentBSS(); e.Kind == "state" && b != nil && (e.State == StateCompleted || wifiJoining(e.State)) {
			events[i].SSID, events[i].BSSID = b.SSID, b.BSSID
		}
	}
	w.mu.Unlock()
	for _, e := range events {
		w.emit(e)
	}
	if rejoin {
		go w.rejoinKnown("the link dropped")
	}
}

func wifiHasKind(events []Event, kind string) bool {
	return slices.ContainsFunc(events, func(e Event) bool { return e.Kind == kind })
}

// wifiPropsText shows changed properties for the debug log.
func wifiPropsText(m map[string]dbus.Variant) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "BSSs" || k == "Networks" {
			parts = append(parts, k+"=…")
			continue
		}
		parts = append(parts, k+"="+m[k].String())
	}
	return strings.Join(parts, " ")
}

// refreshCurrent reads CurrentNetwork and CurrentBSS, and fills in the
// SSID of the state events from them. It runs on the signal goroutine
// without mu held.
func (w *Client) refreshCurrent() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	props := map[string]dbus.Variant{}
	for _, name := range []string{"CurrentNetwork", "CurrentBSS"} {
		var v dbus.Variant
		if err := w.obj.CallWithContext(ctx, wpabus.Props+".Get", 0, wpabus.Iface, name).Store(&v); err == nil {
			props[name] = v
		}
	}
	w.mu.Lock()
	w.applyIface(props)
	w.mu.Unlock()
}

// applyIface applies Interface properties; call with mu held. It returns
// the events to emit.
func (w *Client) applyIface(props map[string]dbus.Variant) []Event {
	var events []Event
	if v, ok := props["CurrentBSS"].Value().(dbus.ObjectPath); ok {
		w.st.currentBSS = v
	}
	if v, ok := props["CurrentNetwork"].Value().(dbus.ObjectPath); ok {
		w.st.currentNet = v
	}
	if v, ok := props["Scanning"].Value().(bool); ok {
		w.st.scanning = v
	}
	if v, ok := props["DisconnectReason"].Value().(int32); ok && v != 0 {
		w.st.disconnects++
		w.st.lastReason = int(v)
	}
	if v, ok := props["AuthStatusCode"].Value().(int32); ok && v > 0 {
		w.st.authFails++
		w.st.lastAuth = int(v)
	}
	if v, ok := props["AssocStatusCode"].Value().(int32); ok && v > 0 {
		w.st.assocFails++
		w.st.lastAssoc = int(v)
	}
	if v, ok := props["State"].Value().(string); ok && v != w.st.state {
		w.st.state = v
		events = append(events, Event{Kind: "state", State: v})
		if v == StateCompleted {
			w.st.everCompleted, w.st.linked = true, true
		}
		// A drop may pass through a handshake state (completed ->
		// 4way_handshake -> scanning): it is the first state out of the
		// link that is not part of (re)joining.
		if w.st.linked && v != StateCompleted && !wifiJoining(v) {
			w.st.linked = false
			d := Event{Kind: "dropped", State: v}
			if w.st.lastReason != 0 {
				d.Reason = wifiReason(w.st.lastReason)
			}
			events = append(events, d)
		}
	}
	return events
}

// currentBSS is the BSS the interface is on; call with mu held.
func (w *Client) currentBSS() *BSS {
	if w.st.currentBSS == "" || w.st.currentBSS == "/" {
		return nil
	}
	return w.bss[w.st.currentBSS]
}

// Status is the interface's state now.
func (w *Client) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Status{Interface: w.ifname, State: w.st.state}
	if w.st.state == StateCompleted || wifiJoining(w.st.state) {
		if b := w.currentBSS(); b != nil {
			s.SSID, s.BSSID, s.Frequency, s.Band, s.Security, s.Signal = b.SSID, b.BSSID, b.Frequency, b.Band, b.Security, b.Signal
		}
	}
	if w.st.lastReason != 0 {
		s.LastDisconnect = wifiReason(w.st.lastReason)
	}
	for ssid, n := range w.nets {
		s.Known = append(s.Known, Known{SSID: ssid, Priority: n.net.Priority, Saved: n.saved})
	}
	slices.SortFunc(s.Known, func(a, b Known) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.SSID, b.SSID))
	})
	return s
}

// BSSs is the scan list as wpa_supplicant holds it now, strongest first.
func (w *Client) BSSs() []BSS {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bssList()
}

func (w *Client) bssList() []BSS {
	list := make([]BSS, 0, len(w.bss))
	for _, b := range w.bss {
		list = append(list, *b)
	}
	slices.SortFunc(list, func(a, b BSS) int {
		return cmp.Or(cmp.Compare(b.Signal, a.Signal), cmp.Compare(a.SSID, b.SSID), cmp.Compare(a.BSSID, b.BSSID))
	})
	return list
}

// SignalPoll reads the link's signal, speed and noise now.
func (w *Client) SignalPoll(ctx context.Context) (Signal, error) {
	var m map[string]dbus.Variant
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".SignalPoll", 0).Store(&m); err != nil {
		return Signal{}, &Error{Op: "read the signal", Err: ErrNotConnected, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
	}
	num := func(k string) int {
		switch v := m[k].Value().(type) {
		case int32:
			return int(v)
		case uint32:
			return int(v)
		}
		return 0
	}
	width, _ := m["width"].Value().(string)
	return Signal{RSSI: num("rssi"), AvgRSSI: num("avg-rssi"), Noise: num("noise"),
		LinkSpeed: num("linkspeed"), Frequency: num("frequency"), Width: width}, nil
}
