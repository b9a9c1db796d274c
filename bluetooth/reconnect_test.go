package bluetooth

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// connectOK is Python for a Connect that works and says so, as bluetoothd
// does (the template's own Connect keeps Connected false when read back).
const connectOK = `
self.props['org.bluez.Device1']['Connected'] = dbus.Boolean(True, variant_level=1)
self.EmitSignal('org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as',
    ['org.bluez.Device1', {'Connected': dbus.Boolean(True, variant_level=1)}, []])
`

func TestAutoReconnectBacksOff(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	addr := startBus(t)
	m := startMock(t, addr, connect(t, addr))
	m.addAdapter("hci0")
	dev := m.addDevice("hci0", headsetAddr, "headset")
	m.must("/", "org.bluez.Mock.PairDevice", "hci0", headsetAddr, int32(0x240404))
	// The headset is off: every page times out.
	m.addMethod(dev, ifaceDevice, "Connect", "", "", raise("org.bluez.Error.Failed", "br-connection-page-timeout"))

	c, ev := startAutoConnect(t, addr, clk)

	// At start (bluetoothd there, adapter on): one attempt, then the
	// backoff doubles up to its bound, one attempt per expiry.
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		if d := clk.nextTimer(t); d != want*time.Second {
			t.Fatalf("retry %d in %s, want %s", i, d, want*time.Second)
		}
		if n := c.ReconnectState().Attempts; n != i+1 {
			t.Fatalf("%d attempts after %d timers", n, i+1)
		}
		clk.Advance(want * time.Second)
	}
	clk.nextTimer(t)
	ev.wait(t, "a failed attempt reported", func(e Event) bool { return e.Type == EventReconnect && e.Error != "" })

	// The headset comes back in range: a signal, so no waiting for the
	// backoff; it connects.
	m.addMethod(dev, ifaceDevice, "Connect", "", "", connectOK)
	mark := ev.mark()
	m.update(dev, ifaceDevice, map[string]dbus.Variant{"RSSI": dbus.MakeVariant(int16(-50))})
	e := ev.waitFrom(t, mark, "reconnected", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
	// Reported as the run of attempts' cause, not as a bare retry.
	if want := "connected (boxagent started with bluetoothd running, try 7)"; e.Message != want {
		t.Errorf("reconnect reported as %q, want %q", e.Message, want)
	}
	if s := c.ReconnectState(); s.Delay != 0 || s.Pending {
		t.Errorf("after success: %+v", s)
	}

	// Link loss: reconnects at once.
	before := c.ReconnectState().Attempts
	mark = ev.mark()
	m.must("/", "org.bluez.Mock.DisconnectDevice", "hci0", headsetAddr)
	ev.waitFrom(t, mark, "reconnected after link loss", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
	if n := c.ReconnectState().Attempts; n != before+1 {
		t.Errorf("attempts %d, want %d", n, before+1)
	}

	// The user disconnects on purpose: left alone.
	m.addMethod(dev, ifaceDevice, "Disconnect", "", "", strings.ReplaceAll(connectOK, "True", "False"))
	before = c.ReconnectState().Attempts
	if _, err := c.Disconnect(context.Background(), headsetAddr); err != nil {
		t.Fatal(err)
	}
	m.update(dev, ifaceDevice, map[string]dbus.Variant{"RSSI": dbus.MakeVariant(int16(-40))})
	ev.wait(t, "rssi", isDevice(headsetAddr, func(d Device) bool { return d.RSSI != nil && *d.RSSI == -40 }))
	if n := c.ReconnectState().Attempts; n != before {
		t.Errorf("auto-reconnect tried a headset the user disconnected (%d attempts, want %d)", n, before)
	}
}

// A burst of signals with a slow consumer: order kept, goroutines flat.
func TestSignalBurstKeepsOrder(t *testing.T) {
	got := make(chan int16, 2000)
	slow := func(ev Event) {
		if ev.Type == EventDevice && ev.Device.RSSI != nil && len(ev.Changed) == 1 {
			time.Sleep(200 * time.Microsecond)
			got <- *ev.Device.RSSI
		}
	}
	f := newFixture(t, Options{OnEvent: slow})
	f.m.addAdapter("hci0")
	dev := f.m.addDevice("hci0", headsetAddr, "headset")
	f.m.addMethod(dev, "org.boxagent.Test", "Burst", "i", "", `
for i in range(1, args[0] + 1):
    self.EmitSignal('org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as',
        ['org.bluez.Device1', {'RSSI': dbus.Int16(i, variant_level=1)}, []])
`)
	runtime.GC()
	g0 := runtime.NumGoroutine()
	f.m.must(dev, "org.boxagent.Test.Burst", int32(1000))
	peak := 0
	timeout := time.After(30 * time.Second)
	for want := int16(1); want <= 1000; want++ {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("signal %d arrived as %d: order lost", want, v)
			}
		case <-timeout:
			t.Fatalf("only %d of 1000 signals arrived", want-1)
		}
		if n := runtime.NumGoroutine(); n > peak {
			peak = n
		}
	}
	if peak > g0+3 {
		t.Errorf("goroutines grew from %d to %d during the burst", g0, peak)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Adapter: "hci1", PairingPIN: "1234", Capability: "DisplayYesNo",
		Headsets: []Headset{{Address: "00:1b:66:aa:bb:cc", AutoConnect: true, Mode: ModeCall}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{Adapter: "bt0", PairingPIN: "12", Capability: "Yes", Headsets: []Headset{
		{Address: "00:1B:66:AA:BB"}, {Address: "00:1B:66:AA:BB:CC", Mode: "loud"}, {Address: "00-1B-66-AA-BB-CC"}, {}}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	keys := map[string]string{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fe := e.(*FieldError)
		keys[fe.ConfigKey()] = fe.Error()
	}
	for _, k := range []string{"adapter", "pairing_pin", "capability", "headset[0].address", "headset[1].mode", "headset[2].address", "headset[3].address"} {
		if keys[k] == "" {
			t.Errorf("no error at %s; got %v", k, keys)
		}
	}
	if m := keys["headset[0].address"]; !contains(m, "00:1B:66:AA:BB") || !contains(m, "not a Bluetooth address") {
		t.Errorf("message %q", m)
	}
	if contains(keys["pairing_pin"], "12") {
		t.Errorf("the PIN is repeated in %q", keys["pairing_pin"])
	}
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{"00:1b:66:aa:bb:cc": "00:1B:66:AA:BB:CC", " 00-1B-66-AA-BB-CC ": "00:1B:66:AA:BB:CC"} {
		if got, err := ParseAddress(in); err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "00:1B:66:AA:BB", "00:1B:66:AA:BB:CG", "001B66AABBCC", "00:1B:66:AA:BB:CC:DD", "00:1B:66:AA:BBCC:"} {
		if _, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) accepted", in)
		}
	}
}

// Each auto-connect says why it ran: at the agent's start (a boot, or the
// agent restarted) it is the start, not bluetoothd appearing; after a link
// loss, the disconnect.
func TestAutoConnectReasons(t *testing.T) {
	t.Parallel()
	addr := startBus(t)
	m := startMock(t, addr, connect(t, addr))
	m.addAdapter("hci0")
	dev := m.addDevice("hci0", headsetAddr, "headset")
	m.must("/", "org.bluez.Mock.PairDevice", "hci0", headsetAddr, int32(0x240404))
	m.must("/", "org.bluez.Mock.DisconnectDevice", "hci0", headsetAddr)
	m.addMethod(dev, ifaceDevice, "Connect", "", "", connectOK)
	ev := newEvents()
	c := New(connect(t, addr), Options{OnEvent: ev.add,
		Config: Config{Headsets: []Headset{{Address: headsetAddr, AutoConnect: true}}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := ev.wait(t, "connected at start", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
	if e.Message != "connected (boxagent started with bluetoothd running)" {
		t.Errorf("at start: %q", e.Message)
	}
	mark := ev.mark()
	m.must("/", "org.bluez.Mock.DisconnectDevice", "hci0", headsetAddr)
	e = ev.waitFrom(t, mark, "reconnected", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
	if e.Message != "connected (headset "+headsetAddr+" disconnected)" {
		t.Errorf("after the link loss: %q", e.Message)
	}
}

// TestAutoReconnectSparesADyingBluetoothd: BlueZ 5.66's bluetoothd
// segfaults when a Connect ends in Page Timeout (a headset out of range;
// seen on the virtual board). The attempt fails as "bluetoothd is not
// running", not as a timeout, and when bluetoothd comes back the next
// attempt waits for the back-off instead of going at once: where systemd
// restarts bluetoothd, an attempt on every return would kill it in a loop.
func TestAutoReconnectSparesADyingBluetoothd(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	addr := startBus(t)
	m := startMock(t, addr, connect(t, addr))
	m.addAdapter("hci0")
	dev := m.addDevice("hci0", headsetAddr, "headset")
	m.must("/", "org.bluez.Mock.PairDevice", "hci0", headsetAddr, int32(0x240404))
	m.must("/", "org.bluez.Mock.DisconnectDevice", "hci0", headsetAddr)
	// The headset is out of range, and bluetoothd dies on the page.
	m.addMethod(dev, ifaceDevice, "Connect", "", "", "import os\nos._exit(139)")

	c, ev := startAutoConnect(t, addr, clk)
	ev.wait(t, "the attempt that bluetoothd did not survive", func(e Event) bool { return e.Type == EventReconnect && e.Error != "" })
	if d := clk.nextTimer(t); d != time.Second {
		t.Fatalf("retry in %s, want the back-off's first step", d)
	}

	// bluetoothd comes back (systemd restarted it), the headset in range.
	mark := ev.mark()
	m2 := startMock(t, addr, connect(t, addr))
	m2.addAdapter("hci0")
	dev = m2.addDevice("hci0", headsetAddr, "headset")
	m2.must("/", "org.bluez.Mock.PairDevice", "hci0", headsetAddr, int32(0x240404))
	m2.must("/", "org.bluez.Mock.DisconnectDevice", "hci0", headsetAddr)
	m2.addMethod(dev, ifaceDevice, "Connect", "", "", connectOK)
	ev.waitFrom(t, mark, "bluetoothd back", func(e Event) bool { return e.Type == EventService && e.Present != nil && *e.Present })
	// Its devices arrive as InterfacesAdded: a "seen" trigger each. None
	// may start an attempt before the back-off ends.
	ev.waitFrom(t, mark, "the headset back in the model", isDevice(headsetAddr, func(d Device) bool { return d.Paired }))
	time.Sleep(300 * time.Millisecond)
	if n := c.ReconnectState().Attempts; n != 1 {
		t.Fatalf("%d attempts before the back-off ended, want 1", n)
	}
	clk.Advance(time.Second)
	e := ev.waitFrom(t, mark, "reconnected at the back-off's end", func(e Event) bool { return e.Type == EventReconnect && e.Error == "" })
	if !strings.Contains(e.Message, "try 2") {
		t.Errorf("reconnect reported as %q, want the second try", e.Message)
	}
}

// A call whose recipient left the bus is bluetoothd gone, not a timeout.
func TestClassifyNoReply(t *testing.T) {
	for msg, want := range map[string]error{
		"Message recipient disconnected from message bus without replying": ErrAbsent,
		"Did not receive a reply. Possible causes include: …":              ErrTimeout,
	} {
		if got := classify("org.freedesktop.DBus.Error.NoReply", msg); got != want {
			t.Errorf("classify(NoReply, %q) = %v, want %v", msg, got, want)
		}
	}
}

// startAutoConnect starts a client on the bus at addr with the headset as
// its auto_connect one and the back-off 1 s to 8 s on clk, until the test
// ends.
func startAutoConnect(t *testing.T, addr string, clk *fakeClock) (*Client, *events) {
	t.Helper()
	ev := newEvents()
	c := New(connect(t, addr), Options{
		Clock: clk, OnEvent: ev.add, BackoffMin: time.Second, BackoffMax: 8 * time.Second,
		Config: Config{Headsets: []Headset{{Address: headsetAddr, AutoConnect: true}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ev
}
