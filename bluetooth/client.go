package bluetooth

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Options configure a Client.
type Options struct {
	Config Config
	Logger *slog.Logger
	// OnEvent receives every event. The model's events (adapter, device,
	// service) come in order from the one signal goroutine; the agent's
	// decisions and auto-reconnect reports from the goroutine that made
	// them. It must not block for long: it holds up the model's updates
	// (signals queue meanwhile, nothing is lost).
	OnEvent func(Event)
	// CallTimeout bounds every D-Bus call that has no timeout of its own;
	// default 10 s. Pair and Connect have their own (PairTimeout,
	// ConnectTimeout).
	CallTimeout    time.Duration
	PairTimeout    time.Duration // default 60 s
	ConnectTimeout time.Duration // default 45 s
	// AgentPath is where the Agent1 object is exported.
	AgentPath dbus.ObjectPath
	// Clock drives the pairing windows and reconnect backoff; tests pass a
	// fake one.
	Clock Clock
	// Backoff bounds the reconnect delay; default 5 s doubling to 5 min.
	BackoffMin, BackoffMax time.Duration
}

// Event types.
const (
	EventAdapter        = "adapter"         // an adapter appeared or changed
	EventAdapterRemoved = "adapter_removed" // an adapter went away
	EventDevice         = "device"          // a device appeared or changed
	EventDeviceRemoved  = "device_removed"  // BlueZ forgot a device
	EventService        = "service"         // bluetoothd appeared or went away
	EventAgent          = "agent"           // the agent decided a request (Decision)
	EventReconnect      = "reconnect"       // an auto-reconnect attempt
	EventWindow         = "pairing_window"  // a pairing window opened or closed
)

// Event is something that happened, for the daemon to publish.
type Event struct {
	Type     string    `json:"type"`
	Adapter  *Adapter  `json:"adapter,omitempty"`
	Device   *Device   `json:"device,omitempty"`
	Decision *Decision `json:"decision,omitempty"`
	// Changed names the properties a PropertiesChanged carried.
	Changed []string `json:"changed,omitempty"`
	// Present says, for service events, whether bluetoothd is on the bus.
	Present *bool  `json:"present,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Health states, the same words as the API's subsystem states.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
	HealthAbsent   = "absent"
)

// Health is the domain's line in status.
type Health struct {
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Client is boxagent's view of BlueZ on one system bus connection.
type Client struct {
	conn *dbus.Conn
	o    Options
	log  *slog.Logger

	sigs chan *dbus.Signal
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	cfg      Config
	owner    string // unique bus name of org.bluez; "" when absent
	adapters map[dbus.ObjectPath]props
	devices  map[dbus.ObjectPath]props
	agentOK  bool
	agentErr error
	subs     map[int]func(Event)
	nextSub  int
	windowTo time.Time            // pairing window opened by the user
	allowTo  map[string]time.Time // per address, while a user's Pair runs
	rc       *reconnector
}

// New returns a Client on conn, which should have been opened with
// dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()). Nothing is
// called on the bus until Start.
func New(conn *dbus.Conn, o Options) *Client {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.PairTimeout <= 0 {
		o.PairTimeout = 60 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 45 * time.Second
	}
	if o.AgentPath == "" {
		o.AgentPath = "/org/boxagent/bluetooth/agent"
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 5 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	c := &Client{
		conn: conn, o: o, log: o.Logger.With("component", "bluetooth"), cfg: o.Config,
		adapters: map[dbus.ObjectPath]props{}, devices: map[dbus.ObjectPath]props{},
		subs: map[int]func(Event){}, allowTo: map[string]time.Time{},
	}
	c.rc = newReconnector(c)
	return c
}

// Start subscribes to BlueZ's signals, exports the agent, loads the model
// and registers the agent when bluetoothd is there, and follows the
// signals until ctx ends or Close. bluetoothd being absent is not an
// error: the Client waits for it to appear.
func (c *Client) Start(ctx context.Context) error {
	rules := [][]dbus.MatchOption{
		{dbus.WithMatchSender(busName), dbus.WithMatchInterface(ifaceObjMgr)},
		{dbus.WithMatchSender(busName), dbus.WithMatchInterface(ifaceProps), dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchPathNamespace(bluezRoot)},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, busName)},
	}
	for _, r := range rules {
		cctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
		err := c.conn.AddMatchSignalContext(cctx, r...)
		cancel()
		if err != nil {
			return fmt.Errorf("cannot subscribe to BlueZ's signals: %w", err)
		}
	}
	if err := c.conn.ExportMethodTable((&agent{c: c}).methods(), c.o.AgentPath, ifaceAgent); err != nil {
		return fmt.Errorf("cannot export the pairing agent: %w", err)
	}
	// Subscribe before loading, so nothing between the two is missed.
	c.sigs = make(chan *dbus.Signal, 64)
	c.conn.Signal(c.sigs)
	loopCtx, stop := context.WithCancel(ctx)
	c.stop, c.done = stop, make(chan struct{})

	var owner string
	cctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	err := c.conn.BusObject().CallWithContext(cctx, "org.freedesktop.DBus.GetNameOwner", 0, busName).Store(&owner)
	cancel()
	if err == nil {
		// An auto-connect now is the agent's start (boot, or a restart
		// of the agent), not bluetoothd's: history says so.
		c.appeared(ctx, owner, "boxagent started with bluetoothd running")
	} else {
		c.log.Warn("bluetoothd is not on the system bus; waiting for it", "err", err)
	}
	go c.loop(loopCtx)
	return nil
}

// Close stops following signals and unregisters the agent.
func (c *Client) Close() {
	if c.stop == nil {
		return
	}
	c.stop()
	<-c.done
	c.conn.RemoveSignal(c.sigs)
	c.rc.stopAll()
	c.mu.Lock()
	registered, owner := c.agentOK, c.owner
	c.mu.Unlock()
	if registered && owner != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c.conn.Object(busName, bluezRoot).CallWithContext(ctx, ifaceAgentMgr+".UnregisterAgent", 0, c.o.AgentPath)
		cancel()
	}
	c.conn.ExportMethodTable(nil, c.o.AgentPath, ifaceAgent)
}

func (c *Client) loop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-c.sigs:
			if !ok {
				return
			}
			c.handle(ctx, s)
		}
	}
}

func (c *Client) handle(ctx context.Context, s *dbus.Signal) {
	switch s.Name {
	case "org.freedesktop.DBus.NameOwnerChanged":
		var name, old, nw string
		if dbus.Store(s.Body, &name, &old, &nw) != nil || name != busName {
			return
		}
		if old != "" {
			c.vanished()
		}
		if nw != "" {
			c.appeared(ctx, nw, "bluetoothd appeared")
		}
	case ifaceObjMgr + ".InterfacesAdded":
		var path dbus.ObjectPath
		var ifaces map[string]map[string]dbus.Variant
		if dbus.Store(s.Body, &path, &ifaces) != nil {
			return
		}
		c.added(path, ifaces, false)
	case ifaceObjMgr + ".InterfacesRemoved":
		var path dbus.ObjectPath
		var ifaces []string
		if dbus.Store(s.Body, &path, &ifaces) != nil {
			return
		}
		c.removed(path, ifaces)
	case ifaceProps + ".PropertiesChanged":
		var iface string
		var changed map[string]dbus.Variant
		var invalidated []string
		if len(s.Body) < 2 {
			return
		}
		iface, _ = s.Body[0].(string)
		changed, _ = s.Body[1].(map[string]dbus.Variant)
		if len(s.Body) > 2 {
			invalidated, _ = s.Body[2].([]string)
		}
		c.changed(s.Path, iface, changed, invalidated)
	}
}

// emit sends ev to the daemon and to internal subscribers (scan, waits).
func (c *Client) emit(ev Event) {
	c.mu.Lock()
	subs := make([]func(Event), 0, len(c.subs))
	for _, f := range c.subs {
		subs = append(subs, f)
	}
	c.mu.Unlock()
	for _, f := range subs {
		f(ev)
	}
	if c.o.OnEvent != nil {
		c.o.OnEvent(ev)
	}
}

func (c *Client) subscribe(f func(Event)) (cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = f
	return func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

// appeared loads the model from a (new) bluetoothd and registers the
// agent; why is the auto-connect's reason.
func (c *Client) appeared(ctx context.Context, owner, why string) {
	c.mu.Lock()
	c.owner = owner
	c.agentOK, c.agentErr = false, nil
	c.mu.Unlock()
	c.log.Info("bluetoothd is on the bus", "owner", owner)
	yes := true
	c.emit(Event{Type: EventService, Present: &yes, Message: "bluetoothd is on the bus"})

	var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
	cctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	err := c.conn.Object(busName, "/").CallWithContext(cctx, ifaceObjMgr+".GetManagedObjects", 0).Store(&objs)
	cancel()
	if err != nil {
		c.log.Error("cannot read BlueZ's objects", "err", err)
	}
	paths := make([]dbus.ObjectPath, 0, len(objs))
	for p := range objs {
		paths = append(paths, p)
	}
	// Adapters before their devices.
	sort.Slice(paths, func(i, j int) bool { return paths[i] < paths[j] })
	for _, p := range paths {
		c.added(p, objs[p], true)
	}
	c.registerAgent(ctx)
	c.enforceWindow(ctx)
	c.rc.trigger(why)
}

// vanished forgets everything of a bluetoothd that left the bus.
func (c *Client) vanished() {
	c.mu.Lock()
	c.owner = ""
	c.agentOK = false
	devs, ads := c.devices, c.adapters
	c.devices, c.adapters = map[dbus.ObjectPath]props{}, map[dbus.ObjectPath]props{}
	c.mu.Unlock()
	c.log.Warn("bluetoothd left the bus")
	c.rc.daemonLeft()
	for p, pr := range devs {
		d := decodeDevice(p, pr)
		c.emit(Event{Type: EventDeviceRemoved, Device: &d})
	}
	for p, pr := range ads {
		a := decodeAdapter(p, pr)
		c.emit(Event{Type: EventAdapterRemoved, Adapter: &a})
	}
	no := false
	c.emit(Event{Type: EventService, Present: &no, Message: "bluetoothd left the bus"})
}

// added merges new interfaces into the model. initial is the load at
// start, after which auto-reconnect is asked once rather than per object.
func (c *Client) added(path dbus.ObjectPath, ifaces map[string]map[string]dbus.Variant, initial bool) {
	if p, ok := ifaces[ifaceAdapter]; ok {
		c.mu.Lock()
		cur, had := c.adapters[path]
		if !had {
			cur = props{}
			c.adapters[path] = cur
		}
		cur.merge(p, nil)
		a := decodeAdapter(path, cur)
		c.mu.Unlock()
		c.emit(Event{Type: EventAdapter, Adapter: &a})
		if !initial {
			c.enforceWindow(context.Background())
		}
		if a.Powered && !initial {
			c.rc.trigger("adapter " + a.Name + " is on")
		}
	}
	if p, ok := ifaces[ifaceDevice]; ok {
		c.mu.Lock()
		cur, had := c.devices[path]
		if !had {
			cur = props{}
			c.devices[path] = cur
		}
		cur.merge(p, nil)
		d := decodeDevice(path, cur)
		c.mu.Unlock()
		c.emit(Event{Type: EventDevice, Device: &d, Changed: keys(p)})
		if !initial {
			c.rc.deviceSeen(d)
		}
	}
}

func (c *Client) removed(path dbus.ObjectPath, ifaces []string) {
	for _, i := range ifaces {
		switch i {
		case ifaceAdapter:
			c.mu.Lock()
			p, ok := c.adapters[path]
			delete(c.adapters, path)
			c.mu.Unlock()
			if ok {
				a := decodeAdapter(path, p)
				c.emit(Event{Type: EventAdapterRemoved, Adapter: &a})
			}
		case ifaceDevice:
			c.mu.Lock()
			p, ok := c.devices[path]
			delete(c.devices, path)
			c.mu.Unlock()
			if ok {
				d := decodeDevice(path, p)
				c.emit(Event{Type: EventDeviceRemoved, Device: &d})
			}
		}
	}
}

func (c *Client) changed(path dbus.ObjectPath, iface string, ch map[string]dbus.Variant, inv []string) {
	switch iface {
	case ifaceAdapter:
		c.mu.Lock()
		cur, ok := c.adapters[path]
		if !ok {
			c.mu.Unlock()
			return
		}
		wasOn := cur.boolean("Powered")
		cur.merge(ch, inv)
		a := decodeAdapter(path, cur)
		c.mu.Unlock()
		c.emit(Event{Type: EventAdapter, Adapter: &a, Changed: append(keys(ch), inv...)})
		if _, ok := ch["Pairable"]; ok && a.Pairable {
			// bluetoothd turns Pairable on by itself (at power-on, when
			// an agent registers): outside a window it goes off again.
			c.enforceWindow(context.Background())
		}
		if a.Powered && !wasOn {
			c.rc.trigger("adapter " + a.Name + " powered on")
		}
	case ifaceDevice:
		c.mu.Lock()
		cur, ok := c.devices[path]
		if !ok {
			c.mu.Unlock()
			return
		}
		wasConnected := cur.boolean("Connected")
		cur.merge(ch, inv)
		d := decodeDevice(path, cur)
		c.mu.Unlock()
		c.emit(Event{Type: EventDevice, Device: &d, Changed: append(keys(ch), inv...)})
		if wasConnected && !d.Connected {
			c.rc.linkLost(d)
		} else if _, rssi := ch["RSSI"]; rssi {
			c.rc.deviceSeen(d)
		}
	}
}

func keys(m map[string]dbus.Variant) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SetConfig applies a reloaded [bluetooth] table: the agent is registered
// again when its capability changed, and the known headsets are looked at
// again.
func (c *Client) SetConfig(ctx context.Context, cfg Config) error {
	c.mu.Lock()
	old := c.cfg
	c.cfg = cfg
	owner := c.owner
	c.mu.Unlock()
	var err error
	if old.AgentCapability() != cfg.AgentCapability() && owner != "" {
		cctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
		c.conn.Object(busName, bluezRoot).CallWithContext(cctx, ifaceAgentMgr+".UnregisterAgent", 0, c.o.AgentPath)
		cancel()
		err = c.registerAgent(ctx)
	}
	c.rc.trigger("config reloaded")
	return err
}

func (c *Client) config() Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Health says whether bluetoothd, the adapter and the agent are there.
func (c *Client) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner == "" {
		return Health{State: HealthAbsent, Detail: "bluetoothd is not on the system bus"}
	}
	path, err := c.adapterLocked()
	if err != nil {
		return Health{State: HealthDegraded, Detail: err.Error()}
	}
	a := decodeAdapter(path, c.adapters[path])
	switch {
	case !c.agentOK:
		msg := "the pairing agent is not registered"
		if c.agentErr != nil {
			msg += ": " + c.agentErr.Error()
		}
		return Health{State: HealthDegraded, Detail: msg}
	case !a.Powered:
		return Health{State: HealthDegraded, Detail: a.Name + " is powered off"}
	}
	n := 0
	for p, pr := range c.devices {
		d := decodeDevice(p, pr)
		if d.Adapter == a.Name && d.Connected {
			n++
		}
	}
	return Health{State: HealthOK, Detail: fmt.Sprintf("%s %s, %d connected", a.Name, a.Address, n)}
}

// adapterLocked is the configured adapter's path (the first one when none
// is configured). c.mu is held.
func (c *Client) adapterLocked() (dbus.ObjectPath, error) {
	if c.owner == "" {
		return "", &Error{Op: "find the adapter", Kind: ErrAbsent}
	}
	want := c.cfg.Adapter
	if want != "" {
		p := bluezRoot + "/" + dbus.ObjectPath(want)
		if _, ok := c.adapters[p]; ok {
			return p, nil
		}
		return "", &Error{Op: "find adapter", Address: want, Msg: "bluetoothd has no adapter " + want, Kind: ErrNoAdapter}
	}
	var paths []dbus.ObjectPath
	for p := range c.adapters {
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return "", &Error{Op: "find the adapter", Msg: "bluetoothd has no adapter", Kind: ErrNoAdapter}
	}
	sort.Slice(paths, func(i, j int) bool { return paths[i] < paths[j] })
	return paths[0], nil
}

// Adapters lists the adapters BlueZ has.
func (c *Client) Adapters() ([]Adapter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner == "" {
		return nil, &Error{Op: "list adapters", Kind: ErrAbsent}
	}
	out := make([]Adapter, 0, len(c.adapters))
	for p, pr := range c.adapters {
		out = append(out, decodeAdapter(p, pr))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Devices lists the devices the configured adapter knows, headsets first.
func (c *Client) Devices() ([]Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ap, err := c.adapterLocked()
	if err != nil {
		return nil, err
	}
	out := []Device{}
	for p, pr := range c.devices {
		d := decodeDevice(p, pr)
		if d.Adapter == adapterName(ap) {
			out = append(out, d)
		}
	}
	SortDevices(out)
	return out, nil
}

// Device returns one device of the configured adapter.
func (c *Client) Device(address string) (Device, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return Device{}, &Error{Op: "find device", Address: address, Msg: err.Error(), Kind: ErrInvalidAddress}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deviceLocked("find device", a)
}

func (c *Client) deviceLocked(op, address string) (Device, error) {
	ap, err := c.adapterLocked()
	if err != nil {
		return Device{}, err
	}
	p := devicePath(ap, address)
	pr, ok := c.devices[p]
	if !ok {
		return Device{}, &Error{Op: op, Address: address, Msg: adapterName(ap) + " does not know this device", Kind: ErrNotFound}
	}
	return decodeDevice(p, pr), nil
}

// adapter is the configured adapter as it stands.
func (c *Client) adapter() (Adapter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.adapterLocked()
	if err != nil {
		return Adapter{}, err
	}
	return decodeAdapter(p, c.adapters[p]), nil
}

// AdapterByName returns an adapter ("" for the configured one).
func (c *Client) AdapterByName(name string) (Adapter, error) {
	if name == "" {
		return c.adapter()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner == "" {
		return Adapter{}, &Error{Op: "find adapter", Address: name, Kind: ErrAbsent}
	}
	p := bluezRoot + "/" + dbus.ObjectPath(name)
	pr, ok := c.adapters[p]
	if !ok {
		return Adapter{}, &Error{Op: "find adapter", Address: name, Msg: "bluetoothd has no adapter " + name, Kind: ErrNoAdapter}
	}
	return decodeAdapter(p, pr), nil
}

// call makes one method call with the default timeout.
func (c *Client) call(ctx context.Context, timeout time.Duration, path dbus.ObjectPath, method string, args ...any) *dbus.Call {
	if timeout <= 0 {
		timeout = c.o.CallTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.conn.Object(busName, path).CallWithContext(cctx, method, 0, args...)
}

func (c *Client) setProp(ctx context.Context, path dbus.ObjectPath, iface, name string, v any) error {
	return c.call(ctx, 0, path, ifaceProps+".Set", iface, name, dbus.MakeVariant(v)).Err
}

// waitDevice waits until cond holds for the device at path (checked on
// the model now and at each of its events), or ctx ends.
func (c *Client) waitDevice(ctx context.Context, path dbus.ObjectPath, cond func(Device, bool) bool) (Device, error) {
	ping := make(chan struct{}, 1)
	cancel := c.subscribe(func(ev Event) {
		if ev.Device != nil && dbus.ObjectPath(ev.Device.Path) == path || ev.Type == EventService {
			select {
			case ping <- struct{}{}:
			default:
			}
		}
	})
	defer cancel()
	for {
		c.mu.Lock()
		pr, ok := c.devices[path]
		var d Device
		if ok {
			d = decodeDevice(path, pr)
		}
		c.mu.Unlock()
		if cond(d, ok) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-ping:
		}
	}
}

// enforceWindow makes the configured adapter not pairable while no
// pairing window is open. With a NoInputNoOutput agent the kernel accepts
// an incoming just-works pairing by itself, without asking the agent, so
// the adapter's Pairable flag is what keeps strangers out; the agent's
// policy covers every request that does reach it.
func (c *Client) enforceWindow(ctx context.Context) {
	c.mu.Lock()
	now := c.o.Clock.Now()
	open := now.Before(c.windowTo)
	for _, until := range c.allowTo {
		open = open || now.Before(until) // the user's own Pair runs
	}
	path, err := c.adapterLocked()
	pairable := err == nil && c.adapters[path].boolean("Pairable")
	c.mu.Unlock()
	if open || !pairable {
		return
	}
	if err := c.setProp(ctx, path, ifaceAdapter, "Pairable", false); err != nil {
		c.log.Warn("cannot make the adapter not pairable outside a pairing window", "adapter", adapterName(path), "err", callError("set Pairable on", adapterName(path), err))
		return
	}
	c.log.Info("adapter not pairable outside a pairing window", "adapter", adapterName(path))
}
