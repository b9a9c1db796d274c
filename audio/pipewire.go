package audio

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jfreymuth/pulse/proto"
)

// Why the native protocol for PipeWire: pipewire-pulse, PipeWire's
// PulseAudio replacement, speaks only the native Pulse protocol (there is
// no module-dbus-protocol: loading it answers "No such entity"). Every
// operation the agent needs has a native command pipewire-pulse carries
// out: GET_*_INFO_LIST for the model, SUBSCRIBE for its changes,
// SET_CARD_PROFILE, SET_DEFAULT_SINK/SOURCE, SET_SINK/SOURCE_VOLUME and
// _MUTE; the play-and-record test streams over it on both backends. So
// boxagent needs none of PipeWire's own tools (wpctl, pw-dump, pw-cli)
// on the box and starts no child. What it cannot do there: list PipeWire
// modules (pipewire-pulse's module list is its own emulation, not the
// graph's), so the doctor checks WirePlumber by its process instead.
//
// Two behaviours of pipewire-pulse the client allows for: a client must
// name itself (SET_CLIENT_NAME) before anything but GET_SERVER_INFO, or
// it gets "access denied"; and the reply to SET_CARD_PROFILE can come
// before the card shows the new profile, so a switch returns when the
// card's change event says so.

// nativeTimeout bounds one native-protocol request.
const nativeTimeout = 10 * time.Second

// PipeWireClient is a live view of PipeWire through pipewire-pulse's
// native Pulse protocol, kept current by the protocol's subscription
// events (card, sink, source, server).
type PipeWireClient struct {
	pc     *proto.Client
	conn   net.Conn
	opts   Options
	log    *slog.Logger
	server Server
	events chan *proto.SubscribeEvent
	// lost is set when an event did not fit in events: the loop then
	// reads the whole state again.
	lost     atomic.Bool
	done     chan struct{}
	doneOnce sync.Once

	mu        sync.RWMutex
	info      ServerInfo
	cards     map[uint32]*Card
	devices   map[devKey]*Device
	defSink   string
	defSource string
	fanout
}

// devKey: sinks and sources are numbered apart.
type devKey struct {
	kind  string
	index uint32
}

// NewPipeWire speaks the native protocol over conn (a connection to
// pipewire-pulse's socket, see DialNative): it authenticates, names the
// client, subscribes to changes, reads the state and keeps the model
// current until conn closes. The client owns conn from now on.
func NewPipeWire(ctx context.Context, conn net.Conn, opts Options) (*PipeWireClient, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ModeTimeout == 0 {
		opts.ModeTimeout = 10 * time.Second
	}
	c := &PipeWireClient{
		conn: conn, opts: opts, log: opts.Logger.With("component", "audio", "backend", BackendPipeWire),
		events: make(chan *proto.SubscribeEvent, 256), done: make(chan struct{}),
		cards: map[uint32]*Card{}, devices: map[devKey]*Device{},
	}
	c.pc = &proto.Client{Callback: c.callback}
	c.pc.SetTimeout(nativeTimeout)
	c.pc.Open(watchedConn{Conn: conn, gone: c.closeDone})
	fail := func(op string, err error) (*PipeWireClient, error) {
		e := c.nativeError(op, err)
		conn.Close()
		// Not answered at the start: unreachable rather than closed.
		var ae *Error
		if errors.As(e, &ae) && ae.Kind == ErrClosed {
			ae.Kind = ErrUnreachable
		}
		return nil, e
	}
	var auth proto.AuthReply
	if err := c.pc.Request(&proto.Auth{Version: c.pc.Version(), Cookie: cookie()}, &auth); err != nil {
		return fail("authenticate to pipewire-pulse", err)
	}
	c.pc.SetVersion(auth.Version)
	name := proto.PropList{"application.name": proto.PropListString("boxagent")}
	if err := c.pc.Request(&proto.SetClientName{Props: name}, &proto.SetClientNameReply{}); err != nil {
		return fail("name the client to pipewire-pulse", err)
	}
	// Subscribe before reading, so that nothing changes unseen between
	// the read and the first event.
	mask := proto.SubscriptionMaskCard | proto.SubscriptionMaskSink | proto.SubscriptionMaskSource | proto.SubscriptionMaskServer
	if err := c.pc.Request(&proto.Subscribe{Mask: mask}, nil); err != nil {
		return fail("subscribe to pipewire-pulse's events", err)
	}
	if err := c.load(); err != nil {
		return fail("read PipeWire's state", err)
	}
	go c.loop()
	return c, nil
}

// watchedConn tells when the connection is gone: the protocol library
// reports only a clean end (EOF) to its callback.
type watchedConn struct {
	net.Conn
	gone func()
}

func (w watchedConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if err != nil {
		w.gone()
	}
	return n, err
}

func (c *PipeWireClient) closeDone() { c.doneOnce.Do(func() { close(c.done) }) }

// cookie is the native protocol's cookie where PulseAudio's clients look
// for it; pipewire-pulse ignores it (its socket's permissions decide), and
// any 256 bytes do for a server with auth-anonymous.
func cookie() []byte {
	p := os.Getenv("PULSE_COOKIE")
	if p == "" {
		p = filepath.Join(os.Getenv("HOME"), ".config", "pulse", "cookie")
	}
	if b, err := os.ReadFile(p); err == nil && len(b) == 256 {
		return b
	}
	return make([]byte, 256)
}

// DialNative connects to a native-protocol server string: "unix:/path",
// "/path" or "tcp:host:port".
func DialNative(ctx context.Context, server string) (net.Conn, error) {
	network, addr := "unix", server
	switch {
	case strings.HasPrefix(server, "unix:"):
		addr = strings.TrimPrefix(server, "unix:")
	case strings.HasPrefix(server, "tcp:"):
		network, addr = "tcp", strings.TrimPrefix(server, "tcp:")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &Error{Op: "connect to the native protocol at " + server, Kind: ErrUnreachable, Msg: err.Error(),
			Hint: "is pipewire-pulse running? systemctl --user status pipewire-pulse"}
	}
	return conn, nil
}

// ConnectPipeWire tries the candidates' native sockets in order and
// returns the first that answers, with the server it reached.
func ConnectPipeWire(ctx context.Context, cands []Server, opts Options) (*PipeWireClient, Server, error) {
	var tried []string
	var last error
	for _, s := range cands {
		if s.Native == "" {
			continue
		}
		tried = append(tried, s.Native)
		conn, err := DialNative(ctx, s.Native)
		if err != nil {
			last = err
			continue
		}
		c, err := NewPipeWire(ctx, conn, opts)
		if err != nil {
			last = err
			continue
		}
		s.Backend = BackendPipeWire
		c.server = s
		return c, s, nil
	}
	e := &Error{Op: "reach PipeWire's pipewire-pulse", Kind: ErrUnreachable, Msg: "no native socket to try",
		Hint: "start pipewire, wireplumber and pipewire-pulse; [audio] native names the socket"}
	if len(tried) > 0 {
		e.Msg = "tried " + strings.Join(tried, ", ")
		if last != nil {
			e.Msg += ": " + last.Error()
		}
	}
	return nil, Server{}, e
}

// Close ends the connection; Done is closed soon after.
func (c *PipeWireClient) Close() error {
	err := c.conn.Close()
	c.closeDone()
	return err
}

// Done is closed when the connection to pipewire-pulse is gone.
func (c *PipeWireClient) Done() <-chan struct{} { return c.done }

// Server is where the client connected (set by ConnectPipeWire).
func (c *PipeWireClient) Server() Server { return c.server }

func (c *PipeWireClient) options() Options { return c.opts }

func (c *PipeWireClient) logger() *slog.Logger { return c.log }

// callback runs in the protocol's read loop: it must not make requests
// (their replies come through that loop), so events are queued.
func (c *PipeWireClient) callback(m any) {
	switch m := m.(type) {
	case *proto.SubscribeEvent:
		select {
		case c.events <- m:
		default:
			c.lost.Store(true)
		}
	case *proto.ConnectionClosed:
		c.closeDone()
	}
}

// loop takes the events into the model until the connection ends.
// Reading the object an event names is a request made because
// pipewire-pulse said it changed, never a poll.
func (c *PipeWireClient) loop() {
	for {
		select {
		case <-c.done:
			return
		case e := <-c.events:
			c.log.Debug("event", "event", e.Event.String(), "index", e.Index)
			if c.lost.Swap(false) {
				c.log.Info("events were lost; reading PipeWire's state again")
				if err := c.load(); err != nil {
					c.log.Debug("cannot read PipeWire's state", "err", err)
				}
				continue
			}
			if err := c.apply(e); err != nil {
				c.log.Warn("cannot read what an event names", "event", e.Event.String(), "index", e.Index, "err", err)
			}
		}
	}
}

func (c *PipeWireClient) apply(e *proto.SubscribeEvent) error {
	removed := e.Event.GetType() == proto.EventRemove
	switch e.Event.GetFacility() {
	case proto.EventCard:
		if removed {
			c.putCard(e.Index, nil)
			return nil
		}
		// The list, not GET_CARD_INFO: the library's request for one card
		// lacks the name field the protocol has after the index.
		var cards proto.GetCardInfoListReply
		if err := c.pc.Request(&proto.GetCardInfoList{}, &cards); err != nil {
			return err
		}
		var card *Card
		for _, r := range cards {
			if r.CardIndex == e.Index {
				card = nativeCard(r)
			}
		}
		c.putCard(e.Index, card)
	case proto.EventSink:
		if removed {
			c.putDevice(devKey{"sink", e.Index}, nil)
			return nil
		}
		var r proto.GetSinkInfoReply
		if err := c.pc.Request(&proto.GetSinkInfo{SinkIndex: e.Index}, &r); err != nil {
			return err
		}
		c.putDevice(devKey{"sink", e.Index}, nativeSink(&r))
	case proto.EventSource:
		if removed {
			c.putDevice(devKey{"source", e.Index}, nil)
			return nil
		}
		var r proto.GetSourceInfoReply
		if err := c.pc.Request(&proto.GetSourceInfo{SourceIndex: e.Index}, &r); err != nil {
			return err
		}
		c.putDevice(devKey{"source", e.Index}, nativeSource(&r))
	case proto.EventServer:
		return c.loadServer()
	}
	return nil
}

// load reads the whole state; differences to the model go out as events.
func (c *PipeWireClient) load() error {
	if err := c.loadServer(); err != nil {
		return err
	}
	var cards proto.GetCardInfoListReply
	if err := c.pc.Request(&proto.GetCardInfoList{}, &cards); err != nil {
		return err
	}
	var sinks proto.GetSinkInfoListReply
	if err := c.pc.Request(&proto.GetSinkInfoList{}, &sinks); err != nil {
		return err
	}
	var sources proto.GetSourceInfoListReply
	if err := c.pc.Request(&proto.GetSourceInfoList{}, &sources); err != nil {
		return err
	}
	seenCards, seenDevs := map[uint32]bool{}, map[devKey]bool{}
	for _, r := range cards {
		seenCards[r.CardIndex] = true
		c.putCard(r.CardIndex, nativeCard(r))
	}
	for _, r := range sinks {
		k := devKey{"sink", r.SinkIndex}
		seenDevs[k] = true
		c.putDevice(k, nativeSink(r))
	}
	for _, r := range sources {
		k := devKey{"source", r.SourceIndex}
		seenDevs[k] = true
		c.putDevice(k, nativeSource(r))
	}
	c.mu.RLock()
	var goneCards []uint32
	var goneDevs []devKey
	for i := range c.cards {
		if !seenCards[i] {
			goneCards = append(goneCards, i)
		}
	}
	for k := range c.devices {
		if !seenDevs[k] {
			goneDevs = append(goneDevs, k)
		}
	}
	c.mu.RUnlock()
	for _, i := range goneCards {
		c.putCard(i, nil)
	}
	for _, k := range goneDevs {
		c.putDevice(k, nil)
	}
	return nil
}

// loadServer reads the server's name and its default devices.
func (c *PipeWireClient) loadServer() error {
	var r proto.GetServerInfoReply
	if err := c.pc.Request(&proto.GetServerInfo{}, &r); err != nil {
		return err
	}
	c.mu.Lock()
	c.info = ServerInfo{Name: r.PackageName, Version: pipeWireVersion(r.PackageName, r.PackageVersion)}
	sinkChanged, sourceChanged := c.defSink != r.DefaultSinkName, c.defSource != r.DefaultSourceName
	c.defSink, c.defSource = r.DefaultSinkName, r.DefaultSourceName
	c.mu.Unlock()
	if sinkChanged {
		c.emit(Event{Kind: "fallback_sink", Value: r.DefaultSinkName})
	}
	if sourceChanged {
		c.emit(Event{Kind: "fallback_source", Value: r.DefaultSourceName})
	}
	return nil
}

// onPipeWire finds the version in pipewire-pulse's package name
// ("PulseAudio (on PipeWire 0.3.65)"): after the first "on PipeWire "
// that a digit follows, that digit and the digits and dots after it.
func onPipeWire(name string) (version string, ok bool) {
	const tag = "on PipeWire "
	for {
		i := strings.Index(name, tag)
		if i < 0 {
			return "", false
		}
		name = name[i+len(tag):]
		if name != "" && name[0] >= '0' && name[0] <= '9' {
			return name[:len(name)-len(strings.TrimLeft(name, "0123456789."))], true
		}
	}
}

// pipeWireVersion is PipeWire's version from pipewire-pulse's package
// name; the package version is the PulseAudio version it emulates
// (15.0.0), used when the name has none.
func pipeWireVersion(name, version string) string {
	if v, ok := onPipeWire(name); ok {
		return v
	}
	return version
}

// put puts an object read from the server into m (nil: it was removed)
// and emits what changed, as events(old, new) says.
func put[K comparable, V any](c *PipeWireClient, m map[K]*V, k K, v *V, events func(old, cur *V) []Event) {
	c.mu.Lock()
	old := m[k]
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	c.mu.Unlock()
	for _, e := range events(old, v) {
		c.emit(e)
	}
}

func (c *PipeWireClient) putCard(index uint32, card *Card) { put(c, c.cards, index, card, cardEvents) }

func (c *PipeWireClient) putDevice(k devKey, d *Device) { put(c, c.devices, k, d, deviceEvents) }

// cardEvents are the events between two readings of a card (nil: absent),
// the kinds PulseAudio's signals give.
func cardEvents(old, cur *Card) []Event {
	switch {
	case old == nil && cur == nil:
		return nil
	case old == nil:
		return []Event{{Kind: "card.added", Name: cur.Name}}
	case cur == nil:
		return []Event{{Kind: "card.removed", Name: old.Name}}
	}
	var evs []Event
	for _, p := range cur.Profiles {
		if was, ok := old.Profile(p.Name); !ok || was.Available != p.Available {
			avail := p.Available
			evs = append(evs, Event{Kind: "card.profile_available", Name: cur.Name, Profile: p.Name, Available: &avail})
		}
	}
	if old.ActiveProfile != cur.ActiveProfile {
		evs = append(evs, Event{Kind: "card.profile", Name: cur.Name, Profile: cur.ActiveProfile})
	}
	return evs
}

// deviceEvents are cardEvents for sinks and sources.
func deviceEvents(old, cur *Device) []Event {
	switch {
	case old == nil && cur == nil:
		return nil
	case old == nil:
		return []Event{{Kind: cur.Kind + ".added", Name: cur.Name}}
	case cur == nil:
		return []Event{{Kind: old.Kind + ".removed", Name: old.Name}}
	}
	var evs []Event
	if !slices.EqualFunc(old.Volume.Channels, cur.Volume.Channels, func(a, b Channel) bool { return a.Raw == b.Raw }) {
		evs = append(evs, Event{Kind: "device.volume", Name: cur.Name, Value: cur.Volume})
	}
	if old.Muted != cur.Muted {
		evs = append(evs, Event{Kind: "device.mute", Name: cur.Name, Value: cur.Muted})
	}
	if old.State != cur.State {
		evs = append(evs, Event{Kind: "device.state", Name: cur.Name, Value: cur.State})
	}
	if old.ActivePort != cur.ActivePort {
		evs = append(evs, Event{Kind: "device.port", Name: cur.Name, Value: cur.ActivePort})
	}
	return evs
}

// prop reads a property list's string ("" when absent).
func prop(p proto.PropList, key string) string {
	e, ok := p[key]
	if !ok {
		return ""
	}
	return strings.TrimRight(string(e), "\x00")
}

// nativeCard is a card as the native protocol lists it. A profile's
// "available" there is a boolean (libpulse: "if this is zero, meaning
// unavailable"; the servers send available != NO), not PulseAudio's
// unknown/no/yes.
func nativeCard(r *proto.GetCardInfoReply) *Card {
	card := &Card{Name: r.CardName, Index: r.CardIndex, Driver: r.Driver, Description: prop(r.Properties, "device.description"),
		Profiles: []Profile{}, ActiveProfile: r.ActiveProfileName}
	card.Headset = strings.HasPrefix(card.Name, "bluez_card.") || prop(r.Properties, "device.bus") == "bluetooth"
	for _, p := range r.Profiles {
		card.Profiles = append(card.Profiles, Profile{Name: p.Name, Description: p.Description, Priority: p.Priority,
			Available: p.Available != 0, Sinks: p.NumSinks, Sources: p.NumSources})
	}
	return card
}

func nativeDevice(kind string, index uint32, name string, props proto.PropList, driver string, rate uint32,
	vol proto.ChannelVolumes, mute bool, state, card uint32, ports []Port, active string) *Device {
	return &Device{Kind: kind, Name: name, Index: index, Description: prop(props, "device.description"), Driver: driver,
		SampleRate: rate, Volume: newVolume(vol), Muted: mute, State: deviceStates[state], Ports: ports, ActivePort: active,
		cardIndex: card, channels: len(vol)}
}

func nativeSink(r *proto.GetSinkInfoReply) *Device {
	var ports []Port
	for _, p := range r.Ports {
		ports = append(ports, Port{Name: p.Name, Description: p.Description, Priority: p.Priority, Available: portAvailable[p.Available]})
	}
	d := nativeDevice("sink", r.SinkIndex, r.SinkName, r.Properties, r.Driver, r.Rate, r.ChannelVolumes, r.Mute, r.State,
		r.CardIndex, ports, r.ActivePortName)
	d.monIndex = r.MonitorSourceIndex
	return d
}

// nativeSource: for a source the protocol's "monitor" index is the sink it
// monitors (PA_INVALID_INDEX for a real source).
func nativeSource(r *proto.GetSourceInfoReply) *Device {
	var ports []Port
	for _, p := range r.Ports {
		ports = append(ports, Port{Name: p.Name, Description: p.Description, Priority: p.Priority, Available: portAvailable[p.Available]})
	}
	d := nativeDevice("source", r.SourceIndex, r.SourceName, r.Properties, r.Driver, r.Rate, r.ChannelVolumes, r.Mute, r.State,
		r.CardIndex, ports, r.ActivePortName)
	d.monIndex, d.IsMonitor = r.MonitorSourceIndex, r.MonitorSourceIndex != proto.Undefined
	return d
}

// State returns a copy of the model.
func (c *PipeWireClient) State() State {
	c.mu.RLock()
	defer c.mu.RUnlock()
	info := c.info
	info.Native, info.How, info.Backend = c.server.Native, c.server.How, BackendPipeWire
	s := assemble(info, slices.Collect(maps.Values(c.cards)), slices.Collect(maps.Values(c.devices)),
		func(d *Device) string {
			if card, ok := c.cards[d.cardIndex]; ok {
				return card.Name
			}
			return ""
		},
		func(d *Device) string {
			other := map[string]string{"sink": "source", "source": "sink"}[d.Kind]
			if m, ok := c.devices[devKey{other, d.monIndex}]; ok && (d.Kind == "sink" || d.IsMonitor) {
				return m.Name
			}
			return ""
		})
	s.FallbackSink, s.FallbackSource = c.defSink, c.defSource
	return s
}

// cardByName finds a card; the error names the cards there are.
func (c *PipeWireClient) cardByName(name string) (*Card, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return lookupCard(c.cards, name)
}

// device finds a sink or source by name; kind "" searches both.
func (c *PipeWireClient) device(kind, name string) (*Device, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return lookupDevice(c.devices, kind, name)
}
