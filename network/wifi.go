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
)

// wpa_supplicant's D-Bus API (doc/dbus.doxygen in its source).
const (
	wpaService  = "fi.w1.wpa_supplicant1"
	wpaPath     = dbus.ObjectPath("/fi/w1/wpa_supplicant1")
	wpaIface    = "fi.w1.wpa_supplicant1.Interface"
	wpaBSSIface = "fi.w1.wpa_supplicant1.BSS"
	wpaNetIface = "fi.w1.wpa_supplicant1.Network"
	dbusProps   = "org.freedesktop.DBus.Properties"
)

// WiFiService is wpa_supplicant's name on the system bus.
const WiFiService = wpaService

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
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, wpaService).Store(&has); err != nil {
		return nil, fmt.Errorf("cannot ask the system bus for wpa_supplicant: %w", err)
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
	conn.Signal(w.sig)
	if err := w.addMatches(ctx); err != nil {
		conn.RemoveSignal(w.sig)
		return nil, err
	}
	if err := w.attach(ctx, o.Driver); err != nil {
		w.unsubscribe()
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *WiFi) matches() [][]dbus.MatchOption {
	return [][]dbus.MatchOption{
		{dbus.WithMatchSender(wpaService), dbus.WithMatchPathNamespace(wpaPath)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, wpaService)},
	}
}

func (w *WiFi) addMatches(ctx context.Context) error {
	for _, m := range w.matches() {
		if err := w.conn.AddMatchSignalContext(ctx, m...); err != nil {
			return fmt.Errorf("cannot follow wpa_supplicant's signals: %w", err)
		}
	}
	return nil
}

func (w *WiFi) unsubscribe() {
	for _, m := range w.matches() {
		_ = w.conn.RemoveMatchSignal(m...)
	}
	w.conn.RemoveSignal(w.sig)
}

// attach gets the interface object and reads its state and BSS list.
func (w *WiFi) attach(ctx context.Context, driver string) error {
	root := w.conn.Object(wpaService, wpaPath)
	err := root.CallWithContext(ctx, wpaService+".GetInterface", 0, w.ifname).Store(&w.path)
	if dbusErrorName(err) == wpaService+".InterfaceUnknown" {
		args := map[string]dbus.Variant{"Ifname": dbus.MakeVariant(w.ifname), "Driver": dbus.MakeVariant(driver)}
		err = root.CallWithContext(ctx, wpaService+".CreateInterface", 0, args).Store(&w.path)
		if err != nil {
			return &WiFiError{Op: "open " + w.ifname, Err: ErrWiFiNoInterface, Detail: "wpa_supplicant: " + dbusMessage(err)}
		}
		w.log.Info("interface created in wpa_supplicant", "path", w.path)
	} else if err != nil {
		return &WiFiError{Op: "open " + w.ifname, Err: ErrWiFiNoSupplicant, Detail: dbusMessage(err)}
	}
	w.obj = w.conn.Object(wpaService, w.path)
	var props map[string]dbus.Variant
	if err := w.obj.CallWithContext(ctx, dbusProps+".GetAll", 0, wpaIface).Store(&props); err != nil {
		return fmt.Errorf("cannot read %s's state from wpa_supplicant: %w", w.ifname, err)
	}
	bssPaths, _ := props["BSSs"].Value().([]dbus.ObjectPath)
	netPaths, _ := props["Networks"].Value().([]dbus.ObjectPath)
	bss := map[dbus.ObjectPath]*WiFiBSS{}
	for _, p := range bssPaths {
		var bp map[string]dbus.Variant
		if err := w.conn.Object(wpaService, p).CallWithContext(ctx, dbusProps+".GetAll", 0, wpaBSSIface).Store(&bp); err != nil {
			continue // gone meanwhile; its BSSRemoved is queued
		}
		b := &WiFiBSS{path: p}
		parseBSS(b, bp)
		bss[p] = b
	}
	nets := map[string]*wifiNet{}
	for _, p := range netPaths {
		var np map[string]dbus.Variant
		if err := w.conn.Object(wpaService, p).CallWithContext(ctx, dbusProps+".Get", 0, wpaNetIface, "Properties").Store(&np); err != nil {
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
		if len(s.Body) == 3 && s.Body[0] == wpaService && s.Body[2] == "" {
			w.markGone("wpa_supplicant left the bus")
		}
		return
	case wpaService + ".InterfaceRemoved":
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
	case dbusProps + ".PropertiesChanged":
		iface, _ := s.Body[0].(string)
		changed, _ := s.Body[1].(map[string]dbus.Variant)
		switch {
		case iface == wpaIface && s.Path == w.path:
			if w.log.Enabled(context.Background(), slog.LevelDebug) {
				w.log.Debug("interface properties changed", "props", wifiPropsText(changed))
			}
			events = w.applyIface(changed)
		case iface == wpaBSSIface:
			if b, ok := w.bss[s.Path]; ok {
				parseBSS(b, changed)
			}
		}
	case wpaIface + ".BSSAdded":
		p, _ := s.Body[0].(dbus.ObjectPath)
		props, _ := s.Body[1].(map[string]dbus.Variant)
		b := &WiFiBSS{path: p}
		parseBSS(b, props)
		w.bss[p] = b
		if w.onBSS != nil {
			c := *b
			added = &c
		}
	case wpaIface + ".BSSRemoved":
		p, _ := s.Body[0].(dbus.ObjectPath)
		delete(w.bss, p)
	case wpaIface + ".ScanDone":
		w.st.scans++
		w.st.scanOK, _ = s.Body[0].(bool)
		events = append(events, WiFiEvent{Kind: "scan", State: w.st.state, Count: len(w.bss)})
	case wpaIface + ".PskMismatch":
		w.st.pskMismatch++
	case wpaIface + ".NetworkRemoved":
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
		if err := w.obj.CallWithContext(ctx, dbusProps+".Get", 0, wpaIface, name).Store(&v); err == nil {
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
	if err := w.obj.CallWithContext(ctx, wpaIface+".SignalPoll", 0).Store(&m); err != nil {
		return WiFiSignal{}, &WiFiError{Op: "read the signal", Err: ErrWiFiNotConnected, Detail: "wpa_supplicant: " + dbusMessage(err)}
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

// securityFor decides how to join n: its own Security, else what the
// scan shows for its SSID, else what its PSK allows.
func (w *WiFi) securityFor(n WiFiNetwork) string {
	if n.Security != "" {
		return n.Security
	}
	w.mu.Lock()
	var best *WiFiBSS
	for _, b := range w.bss {
		if b.SSID == n.SSID && (best == nil || b.Signal > best.Signal) {
			best = b
		}
	}
	w.mu.Unlock()
	if best != nil {
		switch best.Security {
		case WiFiOpen, WiFiWPA2, WiFiWPA3, WiFiTransition:
			if (best.Security == WiFiOpen) == (n.PSK == "") {
				return best.Security
			}
		case WiFiWPA:
			return WiFiWPA2 // WPA-PSK key management serves WPA1 too
		}
	}
	switch {
	case n.PSK == "":
		return WiFiOpen
	case isHexKey(n.PSK):
		return WiFiWPA2
	}
	return WiFiTransition
}

// wifiNetworkArgs are AddNetwork's arguments for n joined with security
// sec. Byte arrays reach wpa_supplicant as unquoted hex (the SSID's exact
// bytes, a raw PSK); strings are quoted (a passphrase); integers are
// written as numbers.
func wifiNetworkArgs(n WiFiNetwork, sec string) map[string]dbus.Variant {
	a := map[string]dbus.Variant{"ssid": dbus.MakeVariant([]byte(n.SSID))}
	if n.Hidden {
		a["scan_ssid"] = dbus.MakeVariant(int32(1))
	}
	if n.Priority != 0 {
		a["priority"] = dbus.MakeVariant(int32(n.Priority))
	}
	hexKey := isHexKey(n.PSK)
	switch sec {
	case WiFiOpen:
		a["key_mgmt"] = dbus.MakeVariant("NONE")
	case WiFiWPA3:
		a["key_mgmt"] = dbus.MakeVariant("SAE")
		a["ieee80211w"] = dbus.MakeVariant(uint32(2))
	case WiFiTransition:
		if hexKey {
			a["key_mgmt"] = dbus.MakeVariant("WPA-PSK")
		} else {
			a["key_mgmt"] = dbus.MakeVariant("WPA-PSK SAE")
		}
		a["ieee80211w"] = dbus.MakeVariant(uint32(1))
	default:
		a["key_mgmt"] = dbus.MakeVariant("WPA-PSK")
	}
	if sec != WiFiOpen {
		if hexKey {
			k, _ := hex.DecodeString(n.PSK)
			a["psk"] = dbus.MakeVariant(k)
		} else {
			a["psk"] = dbus.MakeVariant(n.PSK)
		}
	}
	return a
}

// Connect joins n now and waits until the link is up (State completed),
// at most timeout. It fails with ErrWiFiWrongPassword, ErrWiFiNotFound,
// ErrWiFiRejected or ErrWiFiTimeout; a network that did not join is
// removed again and the known networks are re-enabled. Invalid input is
// refused before anything changes.
func (w *WiFi) Connect(ctx context.Context, n WiFiNetwork, timeout time.Duration) (WiFiStatus, error) {
	if err := n.Validate(); err != nil {
		return WiFiStatus{}, err
	}
	w.opMu.Lock()
	defer w.opMu.Unlock()
	w.setJoining(true)
	defer w.setJoining(false)
	op := fmt.Sprintf("join %q", n.SSID)
	sec := w.securityFor(n)
	var path dbus.ObjectPath
	if err := w.obj.CallWithContext(ctx, wpaIface+".AddNetwork", 0, wifiNetworkArgs(n, sec)).Store(&path); err != nil {
		return w.Status(), &WiFiError{Op: op, Err: ErrWiFiRejected, Detail: "wpa_supplicant refused the network: " + dbusMessage(err)}
	}
	w.mu.Lock()
	before := w.st
	w.mu.Unlock()
	start := time.Now()
	err := w.obj.CallWithContext(ctx, wpaIface+".SelectNetwork", 0, path).Err
	if err == nil {
		err = w.waitJoined(ctx, path, n, sec, before, timeout)
	} else {
		err = &WiFiError{Op: op, Err: ErrWiFiRejected, Detail: "wpa_supplicant: " + dbusMessage(err)}
	}
	if err != nil {
		w.removeNetwork(path)
		w.log.Info("join failed", "ssid", n.SSID, "security", sec, "err", err, "after", time.Since(start).Round(time.Millisecond))
		w.enableKnown()
		return w.Status(), err
	}
	w.log.Info("joined", "ssid", n.SSID, "security", sec, "after", time.Since(start).Round(time.Millisecond))
	w.mu.Lock()
	old := w.nets[n.SSID]
	w.nets[n.SSID] = &wifiNet{path: path, net: n}
	w.mu.Unlock()
	if old != nil && old.path != path {
		w.removeNetwork(old.path)
	}
	return w.Status(), nil
}

func (w *WiFi) setJoining(v bool) {
	w.mu.Lock()
	w.joining = v
	w.mu.Unlock()
}

// seen says whether the scan list holds ssid; call with mu held.
func (w *WiFi) seen(ssid string) bool {
	for _, b := range w.bss {
		if b.SSID == ssid {
			return true
		}
	}
	return false
}

// waitJoined follows the state until path is the completed network, or
// tells why it is not.
func (w *WiFi) waitJoined(ctx context.Context, path dbus.ObjectPath, n WiFiNetwork, sec string, before wifiState, timeout time.Duration) error {
	op := fmt.Sprintf("join %q", n.SSID)
	fail := func(err error, detail string) error { return &WiFiError{Op: op, Err: err, Detail: detail} }
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// Scans that end without the SSID before it is declared not found: a
	// hidden network needs its directed probes, which wpa_supplicant
	// interleaves with wildcard scans.
	maxScans := 2
	if n.Hidden {
		maxScans = 4
	}
	var reached, authenticating bool
	for {
		w.mu.Lock()
		st, ch, seen := w.st, w.changed, w.seen(n.SSID)
		w.mu.Unlock()
		onOurs := st.currentNet == path
		if onOurs && wifiJoining(st.state) {
			reached = true
		}
		if onOurs && st.state == "authenticating" {
			authenticating = true
		}
		psk := sec != WiFiOpen
		switch {
		case st.gone:
			return fail(ErrWiFiNoSupplicant, "")
		case onOurs && st.state == WiFiStateCompleted:
			return nil
		case st.pskMismatch > before.pskMismatch:
			return fail(ErrWiFiWrongPassword, "the 4-way handshake failed")
		case psk && st.disconnects > before.disconnects && (st.lastReason == 15 || st.lastReason == -15):
			return fail(ErrWiFiWrongPassword, wifiReason(st.lastReason))
		case st.authFails > before.authFails:
			return fail(ErrWiFiRejected, "authentication refused: "+wifiStatusCode(st.lastAuth))
		case st.assocFails > before.assocFails:
			return fail(ErrWiFiRejected, "association refused: "+wifiStatusCode(st.lastAssoc))
		case !seen && !reached && st.scans-before.scans >= maxScans:
			return fail(ErrWiFiNotFound, fmt.Sprintf("no AP answered in %d scans", st.scans-before.scans))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			switch {
			case !seen && !reached:
				return fail(ErrWiFiNotFound, "no AP answered within "+timeout.String())
			case (sec == WiFiWPA3 || sec == WiFiTransition) && authenticating && !reached:
				return fail(ErrWiFiWrongPassword, "SAE authentication did not complete")
			case st.disconnects > before.disconnects:
				return fail(ErrWiFiTimeout, "not joined within "+timeout.String()+"; last drop: "+wifiReason(st.lastReason))
			}
			return fail(ErrWiFiTimeout, "not joined within "+timeout.String()+"; state "+st.state)
		}
	}
}

func (w *WiFi) removeNetwork(p dbus.ObjectPath) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.obj.CallWithContext(ctx, wpaIface+".RemoveNetwork", 0, p).Err; err != nil {
		w.log.Warn("cannot remove a network", "path", p, "err", dbusMessage(err))
	}
	w.mu.Lock()
	for ssid, n := range w.nets {
		if n.path == p {
			delete(w.nets, ssid)
		}
	}
	w.mu.Unlock()
}

// enableKnown enables every network wpa_supplicant holds for us, so it
// joins the best one in range: SelectNetwork disables all the others.
func (w *WiFi) enableKnown() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.mu.Lock()
	paths := make([]dbus.ObjectPath, 0, len(w.nets))
	for _, n := range w.nets {
		paths = append(paths, n.path)
	}
	w.mu.Unlock()
	for _, p := range paths {
		err := w.conn.Object(wpaService, p).CallWithContext(ctx, dbusProps+".Set", 0, wpaNetIface, "Enabled", dbus.MakeVariant(true)).Err
		if err != nil {
			w.log.Warn("cannot enable a network", "path", p, "err", dbusMessage(err))
		}
	}
	return len(paths)
}

// rejoinKnown answers a drop: every known network is enabled again and
// wpa_supplicant picks the best in range.
func (w *WiFi) rejoinKnown(why string) {
	w.opMu.Lock()
	defer w.opMu.Unlock()
	if n := w.enableKnown(); n > 0 {
		w.log.Info("re-joining the best known network", "why", why, "known", n)
		w.emit(WiFiEvent{Kind: "rejoin", Reason: why, Count: n})
	}
}

// Forget removes the network named ssid from wpa_supplicant (leaving it
// if it is the current one) and lets it join the best other known one.
func (w *WiFi) Forget(ctx context.Context, ssid string) error {
	w.opMu.Lock()
	defer w.opMu.Unlock()
	w.mu.Lock()
	n, ok := w.nets[ssid]
	w.mu.Unlock()
	if !ok {
		return &WiFiError{Op: fmt.Sprintf("forget %q", ssid), Err: ErrWiFiUnknown}
	}
	if err := w.obj.CallWithContext(ctx, wpaIface+".RemoveNetwork", 0, n.path).Err; err != nil {
		return &WiFiError{Op: fmt.Sprintf("forget %q", ssid), Err: ErrWiFiUnknown, Detail: "wpa_supplicant: " + dbusMessage(err)}
	}
	w.mu.Lock()
	delete(w.nets, ssid)
	w.mu.Unlock()
	w.enableKnown()
	return nil
}

// SetSaved makes wpa_supplicant hold the saved networks nets (the config
// file's), each enabled with its priority, so it joins the best one in
// range. Saved networks no longer listed are removed; a network whose
// settings did not change is left alone (the link stays up), and so is
// one found in wpa_supplicant that the interface is completed on (the
// key that joined it is not readable back to compare). Networks joined
// through Connect stay.
func (w *WiFi) SetSaved(ctx context.Context, nets []WiFiNetwork) error {
	if err := (WiFiConfig{Networks: nets}).ValidateAll(); err != nil {
		return err
	}
	w.opMu.Lock()
	defer w.opMu.Unlock()
	want := map[string]WiFiNetwork{}
	for _, n := range nets {
		want[n.SSID] = n
	}
	w.mu.Lock()
	var remove []dbus.ObjectPath
	var add []WiFiNetwork
	for ssid, have := range w.nets {
		n, ok := want[ssid]
		switch {
		case !ok && have.saved:
			remove = append(remove, have.path)
		case !ok:
		case have.saved && have.net == n:
			delete(want, ssid)
		case !have.saved && have.net.PSK == "" && w.st.currentNet == have.path && w.st.state == WiFiStateCompleted:
			// Found at start and working: adopt it.
			have.saved, have.net = true, n
			delete(want, ssid)
		default:
			remove = append(remove, have.path)
		}
	}
	for _, n := range nets {
		if _, ok := want[n.SSID]; ok {
			add = append(add, n)
		}
	}
	w.mu.Unlock()
	for _, p := range remove {
		w.removeNetwork(p)
	}
	var errs []error
	for _, n := range add {
		args := wifiNetworkArgs(n, w.securityFor(n))
		var p dbus.ObjectPath
		if err := w.obj.CallWithContext(ctx, wpaIface+".AddNetwork", 0, args).Store(&p); err != nil {
			errs = append(errs, fmt.Errorf("cannot save %q in wpa_supplicant: %s", n.SSID, dbusMessage(err)))
			continue
		}
		w.mu.Lock()
		w.nets[n.SSID] = &wifiNet{path: p, net: n, saved: true}
		w.mu.Unlock()
	}
	w.enableKnown()
	return errors.Join(errs...)
}

// dbusErrorName is the D-Bus error name of err, or "".
func dbusErrorName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dp *dbus.Error
	if errors.As(err, &dp) {
		return dp.Name
	}
	return ""
}

// dbusMessage is a D-Bus error as "message (name)".
func dbusMessage(err error) string {
	var de dbus.Error
	if !errors.As(err, &de) {
		var dp *dbus.Error
		if !errors.As(err, &dp) {
			return err.Error()
		}
		de = *dp
	}
	msg := ""
	if len(de.Body) > 0 {
		msg, _ = de.Body[0].(string)
	}
	if msg == "" {
		return de.Name
	}
	return msg + " (" + de.Name + ")"
}
