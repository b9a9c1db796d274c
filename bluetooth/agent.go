package bluetooth

import (
	"context"
	"time"

	"github.com/godbus/dbus/v5"
)

// Decision is what the agent answered to one of bluetoothd's requests.
type Decision struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"` // RequestConfirmation, AuthorizeService, …
	Address string    `json:"address"`
	Adapter string    `json:"adapter,omitempty"`
	UUID    string    `json:"uuid,omitempty"`
	Accept  bool      `json:"accept"`
	Reason  string    `json:"reason"`
}

// registerAgent registers the exported Agent1 with bluetoothd and makes it
// the default agent, which serves every adapter.
func (c *Client) registerAgent(ctx context.Context) error {
	capability := c.config().AgentCapability()
	mgr := bluezRoot
	err := c.call(ctx, 0, mgr, ifaceAgentMgr+".RegisterAgent", c.o.AgentPath, capability).Err
	if err != nil {
		if e := callError("register the pairing agent", "", err); !isKind(e, ErrAlreadyExists) {
			c.setAgent(false, e)
			c.log.Error("cannot register the pairing agent", "err", e)
			return e
		}
	}
	if err := c.call(ctx, 0, mgr, ifaceAgentMgr+".RequestDefaultAgent", c.o.AgentPath).Err; err != nil {
		e := callError("make the pairing agent the default", "", err)
		c.setAgent(false, e)
		c.log.Error("cannot make the pairing agent the default", "err", e)
		return e
	}
	c.setAgent(true, nil)
	c.log.Info("pairing agent registered", "path", c.o.AgentPath, "capability", capability)
	return nil
}

// setAgent records whether bluetoothd has the agent, and says so by an
// event when that changed: health (and the status made from it) shows it,
// and nothing else would tell its readers.
func (c *Client) setAgent(ok bool, err error) {
	c.mu.Lock()
	changed := c.agentOK != ok || (c.agentErr == nil) != (err == nil)
	c.agentOK, c.agentErr = ok, err
	c.mu.Unlock()
	if !changed {
		return
	}
	yes, msg := true, "pairing agent registered"
	if !ok {
		msg = "pairing agent not registered"
		if err != nil {
			msg += ": " + err.Error()
		}
	}
	c.emit(Event{Type: EventService, Present: &yes, Message: msg})
}

// AgentRegistered says whether bluetoothd has the agent as its default.
func (c *Client) AgentRegistered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agentOK
}

// OpenPairingWindow lets the agent accept pairing from any device for d
// (0: the configured window) and makes the configured adapter pairable and
// discoverable for as long, so a headset can find the box and pair.
func (c *Client) OpenPairingWindow(ctx context.Context, d time.Duration) (Adapter, error) {
	if d <= 0 {
		d = c.config().Window()
	}
	a, err := c.adapter()
	if err != nil {
		return Adapter{}, err
	}
	if !a.Powered {
		return a, &Error{Op: "open a pairing window on", Address: a.Name, Kind: ErrAdapterOff}
	}
	c.mu.Lock()
	c.windowTo = c.o.Clock.Now().Add(d)
	c.mu.Unlock()
	secs := uint32(d / time.Second)
	path := dbus.ObjectPath(a.Path)
	for _, kv := range []struct {
		name string
		v    any
	}{{"PairableTimeout", secs}, {"DiscoverableTimeout", secs}, {"Pairable", true}, {"Discoverable", true}} {
		if err := c.setProp(ctx, path, ifaceAdapter, kv.name, kv.v); err != nil {
			return a, callError("set "+kv.name+" on", a.Name, err)
		}
	}
	c.log.Info("pairing window open", "adapter", a.Name, "for", d)
	c.emit(Event{Type: EventWindow, Message: "pairing window open for " + d.String(), Adapter: &a})
	return c.AdapterByName(a.Name)
}

// ClosePairingWindow ends the pairing window: the agent refuses unknown
// devices again and the adapter stops being pairable and discoverable.
func (c *Client) ClosePairingWindow(ctx context.Context) (Adapter, error) {
	c.mu.Lock()
	c.windowTo = time.Time{}
	c.mu.Unlock()
	a, err := c.adapter()
	if err != nil {
		return Adapter{}, err
	}
	for _, name := range []string{"Discoverable", "Pairable"} {
		if err := c.setProp(ctx, dbus.ObjectPath(a.Path), ifaceAdapter, name, false); err != nil {
			return a, callError("set "+name+" on", a.Name, err)
		}
	}
	c.log.Info("pairing window closed", "adapter", a.Name)
	c.emit(Event{Type: EventWindow, Message: "pairing window closed", Adapter: &a})
	return c.AdapterByName(a.Name)
}

// PairingWindow says until when the user's pairing window is open (zero
// when closed).
func (c *Client) PairingWindow() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.o.Clock.Now().After(c.windowTo) {
		return time.Time{}
	}
	return c.windowTo
}

// allowAddress lets the agent accept pairing with one device while the
// user's Pair of it runs; the returned func takes it back.
func (c *Client) allowAddress(address string, d time.Duration) func() {
	c.mu.Lock()
	c.allowTo[address] = c.o.Clock.Now().Add(d)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.allowTo, address)
		c.mu.Unlock()
	}
}

// policy decides a pairing request for a device: accepted inside the
// user's pairing window, while the user pairs this device, or for a
// configured headset.
func (c *Client) policy(address string) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Clock.Now()
	if until, ok := c.allowTo[address]; ok && now.Before(until) {
		return true, "the user is pairing this device"
	}
	if now.Before(c.windowTo) {
		return true, "pairing window open"
	}
	if _, ok := c.cfg.Headset(address); ok {
		return true, "configured headset"
	}
	return false, "no pairing window open and not a configured headset"
}

// fromBluez says whether a call to the agent comes from bluetoothd: the
// agent's object is on the bus for anyone to call.
func (c *Client) fromBluez(sender dbus.Sender) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owner != "" && string(sender) == c.owner
}

// deviceInfo names a device path for a decision.
func (c *Client) deviceInfo(p dbus.ObjectPath) (address, adapter string, trusted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pr, ok := c.devices[p]; ok {
		d := decodeDevice(p, pr)
		return d.Address, d.Adapter, d.Trusted
	}
	s := string(p)
	if i := len(s) - len("/dev_00_00_00_00_00_00"); i > 0 {
		adapter = adapterName(dbus.ObjectPath(s[:i]))
	}
	return addressFromPath(p), adapter, false
}

// decide logs and reports a decision and returns the D-Bus answer.
func (c *Client) decide(d Decision) *dbus.Error {
	d.Time = c.o.Clock.Now().UTC()
	if d.Accept {
		c.log.Info("agent accepted", "method", d.Method, "device", d.Address, "adapter", d.Adapter, "uuid", d.UUID, "reason", d.Reason)
	} else {
		c.log.Warn("agent rejected", "method", d.Method, "device", d.Address, "adapter", d.Adapter, "uuid", d.UUID, "reason", d.Reason)
	}
	c.emit(Event{Type: EventAgent, Decision: &d})
	if d.Accept {
		return nil
	}
	return dbus.NewError("org.bluez.Error.Rejected", []any{d.Reason})
}

// agent is the exported org.bluez.Agent1. bluetoothd calls it; every
// answer goes through Client.policy and is reported as a Decision.
type agent struct{ c *Client }

func (a *agent) pairing(sender dbus.Sender, method string, dev dbus.ObjectPath) *dbus.Error {
	addr, adapter, _ := a.c.deviceInfo(dev)
	d := Decision{Method: method, Address: addr, Adapter: adapter}
	if !a.c.fromBluez(sender) {
		d.Reason = "caller " + string(sender) + " is not bluetoothd"
		return a.c.decide(d)
	}
	d.Accept, d.Reason = a.c.policy(addr)
	return a.c.decide(d)
}

// methods is the Agent1 interface as godbus's method table. Not Conn.Export:
// its reflection over any value's methods makes the linker keep every
// exported method of every type in the binary (2.5 MB on linux/arm).
func (a *agent) methods() map[string]any {
	return map[string]any{
		"Release":              a.Release,
		"RequestPinCode":       a.RequestPinCode,
		"DisplayPinCode":       a.DisplayPinCode,
		"RequestPasskey":       a.RequestPasskey,
		"DisplayPasskey":       a.DisplayPasskey,
		"RequestConfirmation":  a.RequestConfirmation,
		"RequestAuthorization": a.RequestAuthorization,
		"AuthorizeService":     a.AuthorizeService,
		"Cancel":               a.Cancel,
	}
}

func (a *agent) Release(sender dbus.Sender) *dbus.Error {
	if a.c.fromBluez(sender) {
		a.c.log.Warn("bluetoothd released the pairing agent")
		a.c.setAgent(false, nil)
	}
	return nil
}

func (a *agent) RequestPinCode(sender dbus.Sender, dev dbus.ObjectPath) (string, *dbus.Error) {
	if err := a.pairing(sender, "RequestPinCode", dev); err != nil {
		return "", err
	}
	return a.c.config().PIN(), nil
}

func (a *agent) DisplayPinCode(sender dbus.Sender, dev dbus.ObjectPath, pin string) *dbus.Error {
	return a.pairing(sender, "DisplayPinCode", dev)
}

// RequestPasskey needs a keyboard on this side; a headset never asks it
// of a NoInputNoOutput agent.
func (a *agent) RequestPasskey(sender dbus.Sender, dev dbus.ObjectPath) (uint32, *dbus.Error) {
	addr, adapter, _ := a.c.deviceInfo(dev)
	return 0, a.c.decide(Decision{Method: "RequestPasskey", Address: addr, Adapter: adapter, Reason: "no keyboard to enter a passkey"})
}

func (a *agent) DisplayPasskey(sender dbus.Sender, dev dbus.ObjectPath, passkey uint32, entered uint16) *dbus.Error {
	return a.pairing(sender, "DisplayPasskey", dev)
}

func (a *agent) RequestConfirmation(sender dbus.Sender, dev dbus.ObjectPath, passkey uint32) *dbus.Error {
	return a.pairing(sender, "RequestConfirmation", dev)
}

func (a *agent) RequestAuthorization(sender dbus.Sender, dev dbus.ObjectPath) *dbus.Error {
	return a.pairing(sender, "RequestAuthorization", dev)
}

// AuthorizeService lets a trusted device (or one being paired) use a
// service such as A2DP.
func (a *agent) AuthorizeService(sender dbus.Sender, dev dbus.ObjectPath, uuid string) *dbus.Error {
	addr, adapter, trusted := a.c.deviceInfo(dev)
	d := Decision{Method: "AuthorizeService", Address: addr, Adapter: adapter, UUID: uuid}
	switch {
	case !a.c.fromBluez(sender):
		d.Reason = "caller " + string(sender) + " is not bluetoothd"
	case trusted:
		d.Accept, d.Reason = true, "trusted device"
	case a.c.ownController(dev, addr, adapter):
		d.Accept, d.Reason = true, "the box's own controller, paired on "+adapter
	default:
		if ok, why := a.c.policy(addr); ok {
			d.Accept, d.Reason = true, why
		} else {
			d.Reason = "device not trusted"
		}
	}
	return a.c.decide(d)
}

// ownController says whether the device at dev, on adapter, is another
// of this bluetoothd's own controllers and bonded with it: the box talking
// to itself. That is the virtual board's headset (make demo, the lab):
// one bluetoothd owns the box's controller and the one that plays the
// headset, so the one default agent (this one) also answers the headset
// side's questions about the box. A real headset trusts the host it
// paired with; without this the box's own controller was refused A2DP on
// the headset side and the connect failed (br-connection-unknown). The
// bond is the model's: bluetoothd announced it at the pairing, before the
// connect that makes it ask.
func (c *Client) ownController(dev dbus.ObjectPath, address, adapter string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	pr, ok := c.devices[dev]
	if !ok || !decodeDevice(dev, pr).Paired {
		return false
	}
	for p, pr := range c.adapters {
		if a := decodeAdapter(p, pr); a.Name != adapter && a.Address == address {
			return true
		}
	}
	return false
}

func (a *agent) Cancel(sender dbus.Sender) *dbus.Error {
	a.c.log.Info("bluetoothd cancelled a pairing request")
	return nil
}

func isKind(err, kind error) bool {
	e, ok := err.(*Error)
	return ok && e.Kind == kind
}
