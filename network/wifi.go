package network

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

	"github.com/boxagent/boxagent/internal/wpabus"
)

// WiFiService is wpa_supplicant's name on the system bus.
const WiFiService = wpabus.Service

// Errors of the Wi-Fi client; a *WiFiError wraps one of them.
var (
	ErrWiFiNoSupplicant  = errors.New("wpa_supplicant is not on the system bus")
	ErrWiFiNoInterface   = errors.New("no such wireless interface")
	ErrWiFiWrongPassword = errors.New("wrong password")
	ErrWiFiNotFound      = errors.New("network not found")
	ErrWiFiRejected      = errors.New("rejected by AP")
	ErrWiFiTimeout       = errors.New("timed out")
	ErrWiFiNotConnected  = errors.New("not connected")
	ErrWiFiUnknown       = errors.New("not a known network")
	ErrWiFiScanFailed    = errors.New("scan failed")
)

// WiFiError is a failed Wi-Fi operation: what was tried, why it failed
// (one of the ErrWiFi… errors), and details such as wpa_supplicant's own
// words or the AP's status code.
type WiFiError struct {
	Op     string // "join \"home\"", "scan"
	Err    error
	Detail string
}

func (e *WiFiError) Error() string {
	s := "cannot " + e.Op + ": " + e.Err.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *WiFiError) Unwrap() error { return e.Err }

// WiFiOptions configure OpenWiFi.
type WiFiOptions struct {
	// Interface is the wireless link wpa_supplicant drives, e.g. "wlan0".
	Interface string
	// Driver is wpa_supplicant's driver for CreateInterface; default
	// "nl80211".
	Driver string
	Logger *slog.Logger
	// OnEvent gets state changes, scan results and drops, in order, from
	// the goroutine that follows wpa_supplicant's signals: it must not
	// block.
	OnEvent func(WiFiEvent)
	// OnBSS, when set, gets every BSS wpa_supplicant adds to its list
	// (BSSAdded), from the same goroutine as OnEvent: it must not block.
	OnBSS func(WiFiBSS)
	// Rejoin, when true, re-enables every known network when the link
	// drops, so wpa_supplicant joins the best one in range (highest
	// priority, then signal) rather than waiting for the one selected last.
	Rejoin bool
}

// WiFiEvent is a change of the Wi-Fi link, as published to the agent's
// event stream.
type WiFiEvent struct {
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

// WiFiStatus is the interface's state and the network it is on.
type WiFiStatus struct {
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
	Known []WiFiKnown `json:"known,omitempty"`
	// Address is the link's IPv4 address with its prefix length, from
	// the agent's DHCP client, when it has one.
	Address string `json:"address,omitempty"`
	// Link is a SignalPoll, when the caller asked for one.
	Link *WiFiSignal `json:"link,omitempty"`
	// Country is the kernel's regulatory domain now ("DE"; "00" is the
	// world domain), when the caller read it; CountryConfigured is
	// [wifi] country, when set. They differ when the kernel did not
	// apply it (the doctor says why).
	Country           string `json:"country,omitempty"`
	CountryConfigured string `json:"country_configured,omitempty"`
}

// WiFiKnown is a network wpa_supplicant holds.
type WiFiKnown struct {
	SSID     string `json:"ssid"`
	Priority int    `json:"priority,omitempty"`
	// Saved is true for networks of the config file.
	Saved bool `json:"saved,omitempty"`
}

// WiFiSignal is a SignalPoll of the current link.
type WiFiSignal struct {
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
	net  WiFiNetwork // the PSK is kept in memory only, to tell changes
	// saved: pushed from the config file; else joined through Connect or
	// found in wpa_supplicant at start.
	saved bool
}

// WiFi drives one wireless interface through wpa_supplicant's D-Bus API.
// Its state is kept current from wpa_supplicant's signals, never polled.
// The connection is the caller's; it should deliver signals in order
// (dbus.WithSignalHandler(dbus.NewSequentialSignalHandler())).
type WiFi struct {
	conn   *dbus.Conn
	obj    dbus.BusObject
	path   dbus.ObjectPath
	ifname string
	log    *slog.Logger
	emit   func(WiFiEvent)
	onBSS  func(WiFiBSS)
	rejoin bool

	sig       chan *dbus.Signal
	done      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once

	// opMu serialises the calls that change the network list.
	opMu sync.Mutex

	mu      sync.Mutex
	st      wifiState
	bss     map[dbus.ObjectPath]*WiFiBSS
	nets    map[string]*wifiNet // by SSID
	changed chan struct{}
	joining bool // a Connect is running: drops are its business
}

// OpenWiFi finds (or asks wpa_supplicant to create) the interface and
// starts following its signals until Close. It fails with
// ErrWiFiNoSupplicant when wpa_supplicant is not on the bus and
// ErrWiFiNoInterface when it cannot drive the interface.
func OpenWiFi(ctx context.Context, conn *dbus.Conn, o WiFiOptions) (*WiFi, error) {
	if o.Driver == "" {
		o.Driver = "nl80211"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnEvent == nil {
		o.OnEvent = func(WiFiEvent) {}
	}
	if msg := linkProblem(o.Interface); o.Interface == "" || msg != "" {
		return nil, &WiFiError{Op: "open the Wi-Fi interface", Err: ErrWiFiNoInterface, Detail: cmp.Or(msg, "no interface named")}
	}
	has, err := wpabus.OnBus(ctx, conn)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, &WiFiError{Op: "open " + o.Interface, Err: ErrWiFiNoSupplicant, Detail: "start it with -u (D-Bus)"}
	}
	w := &WiFi{
		conn: conn, ifname: o.Interface, log: o.Logger.With("component", "wifi", "interface", o.Interface),
		emit: o.OnEvent, onBSS: o.OnBSS, rejoin: o.Rejoin,
		sig: make(chan *dbus.Signal, 64), done: make(chan struct{}), loopDone: make(chan struct{}),
		bss: map[dbus.ObjectPath]*WiFiBSS{}, nets: map[string]*wifiNet{}, changed: make(chan struct{}),
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

func (w *WiFi) unsubscribe() { wpabus.Unfollow(w.conn, w.sig) }

// attach gets the interface object and reads its state and BSS list.
func (w *WiFi) attach(ctx context.Context, driver string) error {
	root := w.conn.Object(wpabus.Service, wpabus.Path)
	err := root.CallWithContext(ctx, wpabus.Service+".GetInterface", 0, w.ifname).Store(&w.path)
	if wpabus.ErrorName(err) == wpabus.Service+".InterfaceUnknown" {
		args := map[string]dbus.Variant{"Ifname": dbus.MakeVariant(w.ifname), "Driver": dbus.MakeVariant(driver)}
		err = root.CallWithContext(ctx, wpabus.Service+".CreateInterface", 0, args).Store(&w.path)
		if err != nil {
			return &WiFiError{Op: "open " + w.ifname, Err: ErrWiFiNoInterface, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
		}
		w.log.Info("interface created in wpa_supplicant", "path", w.path)
	} else if err != nil {
		return &WiFiError{Op: "open " + w.ifname, Err: ErrWiFiNoSupplicant, Detail: wpabus.ErrorText(err)}
	}
	w.obj = w.conn.Object(wpabus.Service, w.path)
	var props map[string]dbus.Variant
	if err := w.obj.CallWithContext(ctx, wpabus.Props+".GetAll", 0, wpabus.Iface).Store(&props); err != nil {
		return fmt.Errorf("cannot read %s's state from wpa_supplicant: %w", w.ifname, err)
	}
	bssPaths, _ := props["BSSs"].Value().([]dbus.ObjectPath)
	netPaths, _ := props["Networks"].Value().([]dbus.ObjectPath)
	bss := map[dbus.ObjectPath]*WiFiBSS{}
	for _, p := range bssPaths {
		var bp map[string]dbus.Variant
		if err := w.conn.Object(wpabus.Service, p).CallWithContext(ctx, wpabus.Props+".GetAll", 0, wpabus.BSSIface).Store(&bp); err != nil {
			continue // gone meanwhile; its BSSRemoved is queued
		}
		b := &WiFiBSS{path: p}
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
		nets[ssid] = &wifiNet{path: p, net: WiFiNetwork{SSID: ssid, Priority: prio}}
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
func (w *WiFi) Close() {
	w.closeOnce.Do(func() {
		w.unsubscribe()
		close(w.done)
		<-w.loopDone
	})
}

// Interface is the wireless link's name.
func (w *WiFi) Interface() string { return w.ifname }

func (w *WiFi) loop() {
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
func (w *WiFi) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *WiFi) markGone(why string) {
	w.mu.Lock()
	already := w.st.gone
	w.st.gone, w.st.state = true, WiFiStateAbsent
	w.notify()
	w.mu.Unlock()
	if !already {
		w.log.Warn("wpa_supplicant interface gone", "why", why)
		w.emit(WiFiEvent{Kind: "gone", State: WiFiStateAbsent, Reason: why})
	}
}

// handle applies one signal. Signals arrive in order, one at a time.
func (w *WiFi) handle(s *dbus.Signal) {
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
	var events []WiFiEvent
	var added *WiFiBSS
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
		b := &WiFiBSS{path: p}
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
		events = append(events, WiFiEvent{Kind: "scan", State: w.st.state, Count: len(w.bss)})
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
		if b := w.currentBSS(); e.Kind == "state" && b != nil && (e.State == WiFiStateCompleted || wifiJoining(e.State)) {
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

func wifiHasKind(events []WiFiEvent, kind string) bool {
	return slices.ContainsFunc(events, func(e WiFiEvent) bool { return e.Kind == kind })
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
func (w *WiFi) refreshCurrent() {
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
func (w *WiFi) applyIface(props map[string]dbus.Variant) []WiFiEvent {
	var events []WiFiEvent
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
		events = append(events, WiFiEvent{Kind: "state", State: v})
		if v == WiFiStateCompleted {
			w.st.everCompleted, w.st.linked = true, true
		}
		// A drop may pass through a handshake state (completed ->
		// 4way_handshake -> scanning): it is the first state out of the
		// link that is not part of (re)joining.
		if w.st.linked && v != WiFiStateCompleted && !wifiJoining(v) {
			w.st.linked = false
			d := WiFiEvent{Kind: "dropped", State: v}
			if w.st.lastReason != 0 {
				d.Reason = wifiReason(w.st.lastReason)
			}
			events = append(events, d)
		}
	}
	return events
}

// currentBSS is the BSS the interface is on; call with mu held.
func (w *WiFi) currentBSS() *WiFiBSS {
	if w.st.currentBSS == "" || w.st.currentBSS == "/" {
		return nil
	}
	return w.bss[w.st.currentBSS]
}

// Status is the interface's state now.
func (w *WiFi) Status() WiFiStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := WiFiStatus{Interface: w.ifname, State: w.st.state}
	if w.st.state == WiFiStateCompleted || wifiJoining(w.st.state) {
		if b := w.currentBSS(); b != nil {
			s.SSID, s.BSSID, s.Frequency, s.Band, s.Security, s.Signal = b.SSID, b.BSSID, b.Frequency, b.Band, b.Security, b.Signal
		}
	}
	if w.st.lastReason != 0 {
		s.LastDisconnect = wifiReason(w.st.lastReason)
	}
	for ssid, n := range w.nets {
		s.Known = append(s.Known, WiFiKnown{SSID: ssid, Priority: n.net.Priority, Saved: n.saved})
	}
	slices.SortFunc(s.Known, func(a, b WiFiKnown) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.SSID, b.SSID))
	})
	return s
}

// BSSs is the scan list as wpa_supplicant holds it now, strongest first.
func (w *WiFi) BSSs() []WiFiBSS {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bssList()
}

func (w *WiFi) bssList() []WiFiBSS {
	list := make([]WiFiBSS, 0, len(w.bss))
	for _, b := range w.bss {
		list = append(list, *b)
	}
	slices.SortFunc(list, func(a, b WiFiBSS) int {
		return cmp.Or(cmp.Compare(b.Signal, a.Signal), cmp.Compare(a.SSID, b.SSID), cmp.Compare(a.BSSID, b.BSSID))
	})
	return list
}

// SignalPoll reads the link's signal, speed and noise now.
func (w *WiFi) SignalPoll(ctx context.Context) (WiFiSignal, error) {
	var m map[string]dbus.Variant
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".SignalPoll", 0).Store(&m); err != nil {
		return WiFiSignal{}, &WiFiError{Op: "read the signal", Err: ErrWiFiNotConnected, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
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
	return WiFiSignal{RSSI: num("rssi"), AvgRSSI: num("avg-rssi"), Noise: num("noise"),
		LinkSpeed: num("linkspeed"), Frequency: num("frequency"), Width: width}, nil
}
