package audio

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// PulseAudio's D-Bus names.
const (
	// destination is put in every message's destination header. There is
	// no bus on the peer-to-peer socket and PulseAudio ignores the field,
	// but an empty one (godbus's Object("", …)) made it drop the
	// connection, so it is always a real name.
	destination = "org.PulseAudio.Core1"
	corePath    = dbus.ObjectPath("/org/pulseaudio/core1")

	ifaceCore    = "org.PulseAudio.Core1"
	ifaceCard    = "org.PulseAudio.Core1.Card"
	ifaceProfile = "org.PulseAudio.Core1.CardProfile"
	ifaceDevice  = "org.PulseAudio.Core1.Device"
	ifaceSink    = "org.PulseAudio.Core1.Sink"
	ifaceSource  = "org.PulseAudio.Core1.Source"
	ifacePort    = "org.PulseAudio.Core1.DevicePort"
	ifaceProps   = "org.freedesktop.DBus.Properties"
)

// signals the client listens for; together they keep the model current.
var signals = []string{
	ifaceCore + ".NewCard", ifaceCore + ".CardRemoved",
	ifaceCore + ".NewSink", ifaceCore + ".SinkRemoved",
	ifaceCore + ".NewSource", ifaceCore + ".SourceRemoved",
	ifaceCore + ".FallbackSinkUpdated", ifaceCore + ".FallbackSinkUnset",
	ifaceCore + ".FallbackSourceUpdated", ifaceCore + ".FallbackSourceUnset",
	ifaceCard + ".ActiveProfileUpdated", ifaceCard + ".NewProfile",
	ifaceCard + ".ProfileAvailableChanged",
	ifaceDevice + ".VolumeUpdated", ifaceDevice + ".MuteUpdated",
	ifaceDevice + ".StateUpdated", ifaceDevice + ".ActivePortUpdated",
}

// Event is a change PulseAudio signalled, after the model took it in.
type Event struct {
	// Kind: card.added, card.removed, card.profile, card.profile_available,
	// sink.added, sink.removed, source.added, source.removed,
	// fallback_sink, fallback_source, device.volume, device.mute,
	// device.state, device.port.
	Kind string `json:"kind"`
	// Name is the card's or device's name.
	Name string `json:"name,omitempty"`
	// Profile is set for card.profile and card.profile_available.
	Profile   string `json:"profile,omitempty"`
	Available *bool  `json:"available,omitempty"`
	// Value is the new value of a device.* change or the fallback device.
	Value any `json:"value,omitempty"`
}

// Options configure a Client.
type Options struct {
	Logger *slog.Logger
	// Bluetooth, when set, is asked to bring up a headset's voice profile
	// (HFP, else HSP) when `call` finds it present but not available.
	Bluetooth ProfileConnector
	// ModeTimeout bounds the wait for a profile to become available.
	ModeTimeout time.Duration
}

// ProfileConnector connects one Bluetooth profile of a device, named by
// its address and the profile's service UUID: the daemon hands in package
// bluetooth's client.
type ProfileConnector interface {
	ConnectProfile(ctx context.Context, address, uuid string) error
}

// Client is a live view of one PulseAudio over its D-Bus protocol.
type Client struct {
	conn   *dbus.Conn
	opts   Options
	log    *slog.Logger
	server Server
	sigs   chan *dbus.Signal
	done   chan struct{}

	mu             sync.RWMutex
	info           ServerInfo
	cards          map[dbus.ObjectPath]*Card
	devices        map[dbus.ObjectPath]*Device
	fallbackSink   dbus.ObjectPath
	fallbackSource dbus.ObjectPath
	fanout
}

// New reads PulseAudio's state over conn (an authenticated peer-to-peer
// connection, see Dial), subscribes to its signals and keeps the model
// current until conn closes. The Client owns conn from now on.
func New(ctx context.Context, conn *dbus.Conn, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ModeTimeout == 0 {
		opts.ModeTimeout = 10 * time.Second
	}
	c := &Client{
		conn: conn, opts: opts, log: opts.Logger.With("component", "audio"),
		sigs: make(chan *dbus.Signal, 256), done: make(chan struct{}),
		cards: map[dbus.ObjectPath]*Card{}, devices: map[dbus.ObjectPath]*Device{},
	}
	// Subscribe before reading, so that nothing changes unseen between
	// the read and the first signal.
	conn.Signal(c.sigs)
	for _, s := range signals {
		err := c.core().CallWithContext(ctx, ifaceCore+".ListenForSignal", 0, s, []dbus.ObjectPath{}).Err
		if err != nil {
			conn.RemoveSignal(c.sigs)
			return nil, wrap("listen for "+s, err)
		}
	}
	if err := c.load(ctx); err != nil {
		conn.RemoveSignal(c.sigs)
		return nil, err
	}
	go c.loop()
	return c, nil
}

// Close ends the connection; Done is closed soon after.
func (c *Client) Close() error { return c.conn.Close() }

// Done is closed when the connection to PulseAudio is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

// Server is where the client connected (set by Connect).
func (c *Client) Server() Server { return c.server }

func (c *Client) options() Options { return c.opts }

func (c *Client) logger() *slog.Logger { return c.log }

func (c *Client) core() dbus.BusObject { return c.conn.Object(destination, corePath) }

func (c *Client) obj(p dbus.ObjectPath) dbus.BusObject { return c.conn.Object(destination, p) }

// getAll reads every property of iface on p.
func (c *Client) getAll(ctx context.Context, p dbus.ObjectPath, iface string) (map[string]dbus.Variant, error) {
	var m map[string]dbus.Variant
	err := c.obj(p).CallWithContext(ctx, ifaceProps+".GetAll", 0, iface).Store(&m)
	return m, err
}

func (c *Client) set(ctx context.Context, p dbus.ObjectPath, iface, prop string, v any) error {
	return c.obj(p).CallWithContext(ctx, ifaceProps+".Set", 0, iface, prop, dbus.MakeVariant(v)).Err
}

// load reads the whole state.
func (c *Client) load(ctx context.Context) error {
	m, err := c.getAll(ctx, corePath, ifaceCore)
	if err != nil {
		return wrap("read PulseAudio's state", err)
	}
	info := ServerInfo{}
	take(m, "Name", &info.Name)
	take(m, "Version", &info.Version)
	var cards, sinks, sources []dbus.ObjectPath
	take(m, "Cards", &cards)
	take(m, "Sinks", &sinks)
	take(m, "Sources", &sources)
	var fs, fsrc dbus.ObjectPath
	take(m, "FallbackSink", &fs)
	take(m, "FallbackSource", &fsrc)
	cm := map[dbus.ObjectPath]*Card{}
	for _, p := range cards {
		card, err := c.readCard(ctx, p)
		if err != nil {
			return wrap("read card "+string(p), err)
		}
		cm[p] = card
	}
	dm := map[dbus.ObjectPath]*Device{}
	for _, p := range append(slices.Clone(sinks), sources...) {
		d, err := c.readDevice(ctx, p)
		if err != nil {
			return wrap("read device "+string(p), err)
		}
		dm[p] = d
	}
	c.mu.Lock()
	c.info, c.cards, c.devices, c.fallbackSink, c.fallbackSource = info, cm, dm, fs, fsrc
	c.mu.Unlock()
	return nil
}

// take stores m[key] into *dst when it has dst's type.
func take[T any](m map[string]dbus.Variant, key string, dst *T) {
	if v, ok := m[key]; ok {
		if t, ok := v.Value().(T); ok {
			*dst = t
		}
	}
}

func (c *Client) readCard(ctx context.Context, p dbus.ObjectPath) (*Card, error) {
	m, err := c.getAll(ctx, p, ifaceCard)
	if err != nil {
		return nil, err
	}
	card := &Card{path: p, Profiles: []Profile{}}
	take(m, "Name", &card.Name)
	take(m, "Index", &card.Index)
	take(m, "Driver", &card.Driver)
	var props map[string][]byte
	take(m, "PropertyList", &props)
	card.Description = propString(props, "device.description")
	card.Headset = strings.HasPrefix(card.Name, "bluez_card.") || propString(props, "device.bus") == "bluetooth"
	var profiles []dbus.ObjectPath
	var active dbus.ObjectPath
	take(m, "Profiles", &profiles)
	take(m, "ActiveProfile", &active)
	for _, pp := range profiles {
		pm, err := c.getAll(ctx, pp, ifaceProfile)
		if err != nil {
			return nil, err
		}
		pr := Profile{path: pp}
		take(pm, "Name", &pr.Name)
		take(pm, "Description", &pr.Description)
		take(pm, "Priority", &pr.Priority)
		take(pm, "Available", &pr.Available)
		take(pm, "Sinks", &pr.Sinks)
		take(pm, "Sources", &pr.Sources)
		card.Profiles = append(card.Profiles, pr)
		if pp == active {
			card.ActiveProfile = pr.Name
		}
	}
	return card, nil
}

// propString reads a PulseAudio property list value (NUL-terminated).
func propString(props map[string][]byte, key string) string {
	return strings.TrimRight(string(props[key]), "\x00")
}

func (c *Client) readDevice(ctx context.Context, p dbus.ObjectPath) (*Device, error) {
	m, err := c.getAll(ctx, p, ifaceDevice)
	if err != nil {
		return nil, err
	}
	d := &Device{path: p}
	take(m, "Name", &d.Name)
	take(m, "Index", &d.Index)
	take(m, "Driver", &d.Driver)
	take(m, "Card", &d.cardPath)
	take(m, "SampleRate", &d.SampleRate)
	var vol, chans []uint32
	take(m, "Volume", &vol)
	take(m, "Channels", &chans)
	d.Volume, d.channels = newVolume(vol), len(chans)
	take(m, "Mute", &d.Muted)
	var state uint32
	take(m, "State", &state)
	d.State = deviceStates[state]
	var props map[string][]byte
	take(m, "PropertyList", &props)
	d.Description = propString(props, "device.description")
	var ports []dbus.ObjectPath
	var active dbus.ObjectPath
	take(m, "Ports", &ports)
	take(m, "ActivePort", &active)
	for _, pp := range ports {
		pm, err := c.getAll(ctx, pp, ifacePort)
		if err != nil {
			return nil, err
		}
		port := Port{path: pp}
		take(pm, "Name", &port.Name)
		take(pm, "Description", &port.Description)
		take(pm, "Priority", &port.Priority)
		var av uint32
		take(pm, "Available", &av)
		port.Available = portAvailable[av]
		d.Ports = append(d.Ports, port)
		if pp == active {
			d.ActivePort = port.Name
		}
	}
	// Sinks and sources live under distinct paths (…/sinkN, …/sourceN);
	// the kind-specific interface gives the monitor.
	if strings.Contains(string(p), "/sink") {
		d.Kind = "sink"
		var mon dbus.ObjectPath
		if err := c.obj(p).CallWithContext(ctx, ifaceProps+".Get", 0, ifaceSink, "MonitorSource").Store(&mon); err == nil {
			d.monPath = mon
		}
	} else {
		d.Kind = "source"
		var of dbus.ObjectPath
		if err := c.obj(p).CallWithContext(ctx, ifaceProps+".Get", 0, ifaceSource, "MonitorOfSink").Store(&of); err == nil && of != "/" {
			d.monPath, d.IsMonitor = of, true
		}
	}
	return d, nil
}

// State returns a copy of the model.
func (c *Client) State() State {
	c.mu.RLock()
	defer c.mu.RUnlock()
	info := c.info
	info.DBus, info.Native, info.How, info.Backend = c.server.DBus, c.server.Native, c.server.How, BackendPulseAudio
	s := assemble(info, slices.Collect(maps.Values(c.cards)), slices.Collect(maps.Values(c.devices)),
		func(d *Device) string {
			if card, ok := c.cards[d.cardPath]; ok {
				return card.Name
			}
			return ""
		},
		func(d *Device) string { return c.nameOf(d.monPath) })
	s.FallbackSink, s.FallbackSource = c.nameOf(c.fallbackSink), c.nameOf(c.fallbackSource)
	return s
}

// loop applies signals to the model until the connection ends.
func (c *Client) loop() {
	defer close(c.done)
	ctxDone := c.conn.Context().Done()
	for {
		select {
		case sig, ok := <-c.sigs:
			if !ok {
				return
			}
			c.apply(sig)
		case <-ctxDone:
			return
		}
	}
}

// apply takes one signal into the model. Reading a new object is a call
// made because PulseAudio said it exists, never a poll.
func (c *Client) apply(sig *dbus.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	arg := func() dbus.ObjectPath {
		if len(sig.Body) > 0 {
			if p, ok := sig.Body[0].(dbus.ObjectPath); ok {
				return p
			}
		}
		return ""
	}
	switch sig.Name {
	case ifaceCore + ".NewCard", ifaceCard + ".NewProfile":
		p := arg()
		if sig.Name == ifaceCard+".NewProfile" {
			p = sig.Path
		}
		card, err := c.readCard(ctx, p)
		if err != nil {
			c.log.Debug("cannot read a new card", "path", p, "err", err)
			return
		}
		c.mu.Lock()
		c.cards[p] = card
		c.mu.Unlock()
		c.emit(Event{Kind: "card.added", Name: card.Name})
	case ifaceCore + ".CardRemoved":
		c.mu.Lock()
		card, ok := c.cards[arg()]
		delete(c.cards, arg())
		c.mu.Unlock()
		if ok {
			c.emit(Event{Kind: "card.removed", Name: card.Name})
		}
	case ifaceCore + ".NewSink", ifaceCore + ".NewSource":
		d, err := c.readDevice(ctx, arg())
		if err != nil {
			c.log.Debug("cannot read a new device", "path", arg(), "err", err)
			return
		}
		c.mu.Lock()
		c.devices[d.path] = d
		c.mu.Unlock()
		c.emit(Event{Kind: d.Kind + ".added", Name: d.Name})
	case ifaceCore + ".SinkRemoved", ifaceCore + ".SourceRemoved":
		c.mu.Lock()
		d, ok := c.devices[arg()]
		delete(c.devices, arg())
		c.mu.Unlock()
		if ok {
			c.emit(Event{Kind: d.Kind + ".removed", Name: d.Name})
		}
	case ifaceCore + ".FallbackSinkUpdated", ifaceCore + ".FallbackSinkUnset":
		c.mu.Lock()
		c.fallbackSink = arg()
		name := c.nameOf(arg())
		c.mu.Unlock()
		c.emit(Event{Kind: "fallback_sink", Value: name})
	case ifaceCore + ".FallbackSourceUpdated", ifaceCore + ".FallbackSourceUnset":
		c.mu.Lock()
		c.fallbackSource = arg()
		name := c.nameOf(arg())
		c.mu.Unlock()
		c.emit(Event{Kind: "fallback_source", Value: name})
	case ifaceCard + ".ActiveProfileUpdated":
		c.mu.Lock()
		card, ok := c.cards[sig.Path]
		var name string
		if ok {
			for _, p := range card.Profiles {
				if p.path == arg() {
					card.ActiveProfile, name = p.Name, p.Name
				}
			}
		}
		c.mu.Unlock()
		if ok {
			c.emit(Event{Kind: "card.profile", Name: card.Name, Profile: name})
		}
	case ifaceCard + ".ProfileAvailableChanged":
		var avail bool
		if len(sig.Body) > 1 {
			avail, _ = sig.Body[1].(bool)
		}
		c.mu.Lock()
		card, ok := c.cards[sig.Path]
		var name string
		if ok {
			for i := range card.Profiles {
				if card.Profiles[i].path == arg() {
					card.Profiles[i].Available, name = avail, card.Profiles[i].Name
				}
			}
		}
		c.mu.Unlock()
		if ok {
			c.emit(Event{Kind: "card.profile_available", Name: card.Name, Profile: name, Available: &avail})
		}
	case ifaceDevice + ".VolumeUpdated":
		var raw []uint32
		if len(sig.Body) > 0 {
			raw, _ = sig.Body[0].([]uint32)
		}
		if name, ok := c.updateDevice(sig.Path, func(d *Device) { d.Volume = newVolume(raw) }); ok {
			c.emit(Event{Kind: "device.volume", Name: name, Value: newVolume(raw)})
		}
	case ifaceDevice + ".MuteUpdated":
		var m bool
		if len(sig.Body) > 0 {
			m, _ = sig.Body[0].(bool)
		}
		if name, ok := c.updateDevice(sig.Path, func(d *Device) { d.Muted = m }); ok {
			c.emit(Event{Kind: "device.mute", Name: name, Value: m})
		}
	case ifaceDevice + ".StateUpdated":
		var st uint32
		if len(sig.Body) > 0 {
			st, _ = sig.Body[0].(uint32)
		}
		if name, ok := c.updateDevice(sig.Path, func(d *Device) { d.State = deviceStates[st] }); ok {
			c.emit(Event{Kind: "device.state", Name: name, Value: deviceStates[st]})
		}
	case ifaceDevice + ".ActivePortUpdated":
		var port string
		name, ok := c.updateDevice(sig.Path, func(d *Device) {
			for _, p := range d.Ports {
				if p.path == arg() {
					d.ActivePort, port = p.Name, p.Name
				}
			}
		})
		if ok {
			c.emit(Event{Kind: "device.port", Name: name, Value: port})
		}
	}
}

func (c *Client) updateDevice(p dbus.ObjectPath, fn func(*Device)) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.devices[p]
	if !ok {
		return "", false
	}
	fn(d)
	return d.Name, true
}

// nameOf is a device's name; the caller holds mu.
func (c *Client) nameOf(p dbus.ObjectPath) string {
	if d, ok := c.devices[p]; ok {
		return d.Name
	}
	return ""
}

// cardByName finds a card; the error names the cards there are.
func (c *Client) cardByName(name string) (*Card, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return lookupCard(c.cards, name)
}

// device finds a sink or source by name; kind "" searches both.
func (c *Client) device(kind, name string) (*Device, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return lookupDevice(c.devices, kind, name)
}

// Modules lists the names of the modules PulseAudio has loaded
// (module-dbus-protocol, module-bluetooth-discover…), for doctor.
func (c *Client) Modules(ctx context.Context) ([]string, error) {
	var paths []dbus.ObjectPath
	if err := c.core().CallWithContext(ctx, ifaceProps+".Get", 0, ifaceCore, "Modules").Store(&paths); err != nil {
		return nil, wrap("list PulseAudio's modules", err)
	}
	var names []string
	for _, p := range paths {
		var n string
		if err := c.obj(p).CallWithContext(ctx, ifaceProps+".Get", 0, "org.PulseAudio.Core1.Module", "Name").Store(&n); err == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}
