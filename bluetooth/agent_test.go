package bluetooth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeClock drives pairing windows and reconnect backoff in tests.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	added  chan time.Duration
}

type fakeTimer struct {
	at      time.Time
	d       time.Duration
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), added: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	tm := &fakeTimer{at: c.now.Add(d), d: d, f: f}
	c.timers = append(c.timers, tm)
	c.mu.Unlock()
	c.added <- d
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !tm.stopped && !tm.fired
		tm.stopped = true
		return was
	}
}

// Advance moves time on and fires what is due, each in its goroutine.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, tm := range c.timers {
		if !tm.stopped && !tm.fired && !tm.at.After(c.now) {
			tm.fired = true
			due = append(due, tm.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// nextTimer waits for the next AfterFunc and returns its delay.
func (c *fakeClock) nextTimer(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.added:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was set")
	}
	return 0
}

// agentCaller adds a method to the mock that calls our agent from
// bluetoothd's own connection, as bluetoothd does: the template never
// calls the agent itself.
const agentCaller = `
m = args[2]
sig = {'RequestPinCode': 'o', 'RequestConfirmation': 'ou', 'RequestAuthorization': 'o',
       'AuthorizeService': 'os', 'RequestPasskey': 'o', 'DisplayPinCode': 'os'}[m]
a = [dbus.ObjectPath(args[3])]
if m == 'RequestConfirmation':
    a.append(dbus.UInt32(123456))
if m in ('AuthorizeService', 'DisplayPinCode'):
    a.append(args[4])
r = self.connection.call_blocking(args[0], args[1], 'org.bluez.Agent1', m, sig, a)
ret = str(r) if r is not None else ''
`

type agentHarness struct {
	f   *fixture
	dev dbus.ObjectPath
}

func newAgentHarness(t *testing.T, o Options) *agentHarness {
	f, _, dev := pairFixture(t, o)
	f.m.addMethod("/", "org.bluez.Mock", "CallAgent", "sssss", "s", agentCaller)
	return &agentHarness{f: f, dev: dev}
}

// ask makes bluetoothd's request and returns the answer or the error name.
func (h *agentHarness) ask(t *testing.T, method, extra string) (string, error) {
	t.Helper()
	var out string
	err := h.f.m.call("/", "org.bluez.Mock.CallAgent", h.f.conn.Names()[0], string(h.f.c.o.AgentPath), method, string(h.dev), extra).Store(&out)
	return out, err
}

func rejected(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && de.Name == "org.bluez.Error.Rejected" ||
		err != nil && contains(err.Error(), "org.bluez.Error.Rejected")
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestAgentPolicy(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	h := newAgentHarness(t, Options{Clock: clk, Config: Config{PairingPIN: "1234"}})
	f := h.f

	// No window, not configured: just-works, confirmation and PIN refused.
	for _, m := range []string{"RequestConfirmation", "RequestAuthorization", "RequestPinCode"} {
		if _, err := h.ask(t, m, ""); !rejected(err) {
			t.Errorf("%s outside a window: %v, want org.bluez.Error.Rejected", m, err)
		}
	}
	ev := f.ev.wait(t, "a rejection", func(ev Event) bool { return ev.Type == EventAgent && !ev.Decision.Accept })
	if ev.Decision.Address != headsetAddr || ev.Decision.Adapter != "hci0" || ev.Decision.Reason == "" {
		t.Errorf("decision %+v", ev.Decision)
	}
	if _, err := h.ask(t, "AuthorizeService", UUIDA2DPSink); !rejected(err) {
		t.Errorf("AuthorizeService for an untrusted device: %v", err)
	}

	// Inside the user's window: accepted; the PIN is the configured one.
	if _, err := f.c.OpenPairingWindow(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ask(t, "RequestConfirmation", ""); err != nil {
		t.Errorf("confirmation in the window: %v", err)
	}
	if _, err := h.ask(t, "RequestAuthorization", ""); err != nil {
		t.Errorf("just-works in the window: %v", err)
	}
	if pin, err := h.ask(t, "RequestPinCode", ""); err != nil || pin != "1234" {
		t.Errorf("PIN in the window: %q, %v", pin, err)
	}
	// A passkey needs a keyboard: always refused.
	if _, err := h.ask(t, "RequestPasskey", ""); !rejected(err) {
		t.Errorf("RequestPasskey: %v", err)
	}
	// The window ends by itself.
	clk.Advance(61 * time.Second)
	if _, err := h.ask(t, "RequestConfirmation", ""); !rejected(err) {
		t.Errorf("confirmation after the window: %v", err)
	}

	// Trusted devices may use their services.
	f.m.update(h.dev, ifaceDevice, map[string]dbus.Variant{"Trusted": dbus.MakeVariant(true)})
	f.ev.wait(t, "trusted", isDevice(headsetAddr, func(d Device) bool { return d.Trusted }))
	if _, err := h.ask(t, "AuthorizeService", UUIDA2DPSink); err != nil {
		t.Errorf("AuthorizeService for a trusted device: %v", err)
	}

	// Every decision was reported.
	n := f.ev.count(func(ev Event) bool { return ev.Type == EventAgent })
	if n != 10 {
		t.Errorf("%d decisions reported, want 10", n)
	}
}

func TestAgentAllowListAndStrangers(t *testing.T) {
	t.Parallel()
	h := newAgentHarness(t, Options{Config: Config{Headsets: []Headset{{Address: headsetAddr}}}})
	if pin, err := h.ask(t, "RequestPinCode", ""); err != nil || pin != DefaultPIN {
		t.Errorf("configured headset's PIN request: %q, %v", pin, err)
	}
	if _, err := h.ask(t, "RequestConfirmation", ""); err != nil {
		t.Errorf("configured headset's confirmation: %v", err)
	}
	// Anyone else on the bus calling the agent is not bluetoothd.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	other := connect(t, h.f.addr)
	err := other.Object(h.f.conn.Names()[0], h.f.c.o.AgentPath).CallWithContext(ctx, ifaceAgent+".RequestConfirmation", 0, h.dev, uint32(1)).Err
	if !rejected(err) {
		t.Errorf("a stranger's call: %v", err)
	}
}

// The user's own Pair opens the agent for that device only.
func TestAgentDuringUserPair(t *testing.T) {
	t.Parallel()
	h := newAgentHarness(t, Options{})
	// The Pair method asks the agent, as bluetoothd does for a legacy
	// headset, then pairs.
	h.f.m.addMethod(h.dev, ifaceDevice, "Pair", "", "", `
self.connection.call_blocking(self.agent_dest, self.agent_path, 'org.bluez.Agent1', 'RequestPinCode', 'o', [dbus.ObjectPath(self.__dbus_object_path__)])
self.PairDevice('hci0', '`+headsetAddr+`', 0x240404)
`)
	h.f.m.must(h.dev, "org.freedesktop.DBus.Mock.AddProperty", "org.boxagent.Test", "x", dbus.MakeVariant(""))
	// Tell the device object where the agent is.
	h.f.m.addMethod(h.dev, "org.boxagent.Test", "Setup", "ss", "", "self.agent_dest = args[0]; self.agent_path = args[1]")
	h.f.m.must(h.dev, "org.boxagent.Test.Setup", h.f.conn.Names()[0], string(h.f.c.o.AgentPath))
	if _, err := h.f.c.Pair(context.Background(), headsetAddr, nil); err != nil {
		t.Fatal(err)
	}
	ev := h.f.ev.wait(t, "decision", func(ev Event) bool { return ev.Type == EventAgent })
	if !ev.Decision.Accept || ev.Decision.Method != "RequestPinCode" {
		t.Errorf("decision %+v", ev.Decision)
	}
	// Afterwards the device is back to needing a window.
	if _, err := h.ask(t, "RequestConfirmation", ""); !rejected(err) {
		t.Errorf("after the pair: %v", err)
	}
}

// bluetoothd restarts: the agent is registered with the new one and the
// model is rebuilt from it.
func TestAgentReregistersWhenBluezRestarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.m.addAdapter("hci0")
	f.ev.wait(t, "adapter", func(ev Event) bool { return ev.Type == EventAdapter })
	if calls := f.m.calls(bluezRoot); len(calls) != 2 || calls[0] != "RegisterAgent" || calls[1] != "RequestDefaultAgent" {
		t.Fatalf("first bluetoothd saw %v", calls)
	}
	f.m.stop()
	f.ev.wait(t, "gone", func(ev Event) bool { return ev.Type == EventService && !*ev.Present })
	if f.c.AgentRegistered() {
		t.Error("agent still registered with a bluetoothd that left")
	}
	if _, err := f.c.Adapters(); !errors.Is(err, ErrAbsent) {
		t.Errorf("Adapters() while absent: %v", err)
	}
	mark := f.ev.mark()
	m2 := startMock(t, f.addr, connect(t, f.addr))
	f.ev.waitFrom(t, mark, "back", func(ev Event) bool { return ev.Type == EventService && *ev.Present })
	// Registration happens right after the service event, on the signal
	// goroutine; its call lands on the new mock, and an event says so
	// (status and health show it).
	f.ev.waitFrom(t, mark, "agent registered", func(ev Event) bool {
		return ev.Type == EventService && *ev.Present && ev.Message == "pairing agent registered"
	})
	if !f.c.AgentRegistered() {
		t.Fatal("agent not registered with the new bluetoothd")
	}
	if calls := m2.calls(bluezRoot); len(calls) != 2 || calls[0] != "RegisterAgent" {
		t.Errorf("second bluetoothd saw %v", calls)
	}
	mark = f.ev.mark()
	m2.addAdapter("hci0")
	f.ev.waitFrom(t, mark, "adapter again", func(ev Event) bool { return ev.Type == EventAdapter })
	if ads, err := f.c.Adapters(); err != nil || len(ads) != 1 {
		t.Errorf("model after restart: %v, %v", ads, err)
	}
}

// One bluetoothd owning two controllers (the virtual board: the box's and
// the one playing the headset) asks the one default agent, this one, to
// authorise the box's own controller on the headset side. It is let in
// once bonded there, as a headset lets in its paired host; unbonded, or
// any other device, stays refused.
func TestAgentOwnController(t *testing.T) {
	t.Parallel()
	h := newAgentHarness(t, Options{Config: Config{Adapter: "hci0"}})
	f := h.f
	hci0, err := f.c.AdapterByName("hci0")
	if err != nil {
		t.Fatal(err)
	}
	f.m.addAdapter("hci1")
	box := f.m.addDevice("hci1", hci0.Address, "box")
	stranger := f.m.addDevice("hci1", "00:1B:66:00:00:09", "stranger")
	f.ev.wait(t, "the box on hci1", isDevice(hci0.Address, func(d Device) bool { return d.Adapter == "hci1" }))
	ask := func(dev dbus.ObjectPath) error {
		return f.m.call("/", "org.bluez.Mock.CallAgent", f.conn.Names()[0], string(f.c.o.AgentPath), "AuthorizeService", string(dev), UUIDA2DPSink).Err
	}
	if err := ask(box); !rejected(err) {
		t.Errorf("the box's controller on hci1, not bonded: %v, want rejected", err)
	}
	f.m.update(box, ifaceDevice, map[string]dbus.Variant{"Paired": dbus.MakeVariant(true)})
	f.m.update(stranger, ifaceDevice, map[string]dbus.Variant{"Paired": dbus.MakeVariant(true)})
	f.ev.wait(t, "both bonded", isDevice("00:1B:66:00:00:09", func(d Device) bool { return d.Paired }))
	if err := ask(box); err != nil {
		t.Errorf("the box's controller on hci1, bonded: %v, want accepted", err)
	}
	ev := f.ev.wait(t, "the acceptance", func(ev Event) bool { return ev.Type == EventAgent && ev.Decision.Accept })
	if d := ev.Decision; d.Address != hci0.Address || d.Adapter != "hci1" || !contains(d.Reason, "own controller") {
		t.Errorf("decision %+v", d)
	}
	if err := ask(stranger); !rejected(err) {
		t.Errorf("another bonded, untrusted device on hci1: %v, want rejected", err)
	}
	// The box's own address on its own adapter is no loopback.
	self := f.m.addDevice("hci0", hci0.Address, "spoof")
	f.m.update(self, ifaceDevice, map[string]dbus.Variant{"Paired": dbus.MakeVariant(true)})
	f.ev.wait(t, "the spoof bonded", isDevice(hci0.Address, func(d Device) bool { return d.Adapter == "hci0" && d.Paired }))
	if err := ask(self); !rejected(err) {
		t.Errorf("a device with hci0's address on hci0: %v, want rejected", err)
	}
}
