package bluetooth

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/testbus"

	"github.com/godbus/dbus/v5"
)

// The host tests run against a real dbus-daemon (private, started here) and
// python-dbusmock's bluez5 template standing in for bluetoothd. The
// template has known gaps; each workaround below says which one it covers.

// startBus runs a private dbus-daemon and returns its address.
func startBus(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts dbus-daemon and python-dbusmock; skipped with -short (cross tests under qemu-user, where the fake clock's waits are too tight)")
	}
	return testbus.Start(t)
}

// mockPython finds a python3 that has dbusmock (Debian's, not a pyenv one).
func mockPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import dbusmock").Run() == nil {
			return p
		}
	}
	t.Skip("python3-dbusmock is not installed (make test installs it)")
	return ""
}

// connect opens a connection the way the daemon does.
func connect(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// mock is one run of the bluez5 template.
type mock struct {
	t    *testing.T
	cmd  *exec.Cmd
	conn *dbus.Conn // the test's own connection, to drive the mock
	log  string
}

// startMock runs the template on the bus and returns once it owns
// org.bluez (NameOwnerChanged, no polling).
func startMock(t *testing.T, addr string, conn *dbus.Conn) *mock {
	t.Helper()
	py := mockPython(t)
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	defer conn.RemoveSignal(ch)
	if err := conn.AddMatchSignal(dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, busName)); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "dbusmock.log")
	cmd := exec.Command(py, "-m", "dbusmock", "--template", "bluez5", "-l", log)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &mock{t: t, cmd: cmd, conn: conn, log: log}
	t.Cleanup(m.stop)
	timeout := time.After(15 * time.Second)
	for {
		select {
		case s := <-ch:
			if len(s.Body) == 3 && s.Body[0] == busName && s.Body[2] != "" {
				return m
			}
		case <-timeout:
			t.Fatal("dbusmock did not take org.bluez within 15 s")
		}
	}
}

func (m *mock) stop() {
	if m.cmd.ProcessState == nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	}
}

func (m *mock) call(path dbus.ObjectPath, method string, args ...any) *dbus.Call {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.conn.Object(busName, path).CallWithContext(ctx, method, 0, args...)
}

func (m *mock) must(path dbus.ObjectPath, method string, args ...any) {
	m.t.Helper()
	if err := m.call(path, method, args...).Err; err != nil {
		m.t.Fatalf("%s on %s: %v", method, path, err)
	}
}

func (m *mock) addAdapter(name string) dbus.ObjectPath {
	m.t.Helper()
	var p string
	if err := m.call("/", "org.bluez.Mock.AddAdapter", name, "boxagent-test").Store(&p); err != nil {
		m.t.Fatal(err)
	}
	return dbus.ObjectPath(p)
}

func (m *mock) addDevice(adapter, address, name string) dbus.ObjectPath {
	m.t.Helper()
	var p string
	if err := m.call("/", "org.bluez.Mock.AddDevice", adapter, address, name).Store(&p); err != nil {
		m.t.Fatal(err)
	}
	return dbus.ObjectPath(p)
}

// update sets properties and emits PropertiesChanged, as bluetoothd would.
func (m *mock) update(path dbus.ObjectPath, iface string, p map[string]dbus.Variant) {
	m.t.Helper()
	m.must(path, "org.freedesktop.DBus.Mock.UpdateProperties", iface, p)
}

// addMethod replaces or adds a method with Python code (the way to inject
// BlueZ's errors and delays into the template).
func (m *mock) addMethod(path dbus.ObjectPath, iface, name, in, out, code string) {
	m.t.Helper()
	m.must(path, "org.freedesktop.DBus.Mock.AddMethod", iface, name, in, out, code)
}

func (m *mock) get(path dbus.ObjectPath, iface, name string) any {
	m.t.Helper()
	var v dbus.Variant
	if err := m.call(path, "org.freedesktop.DBus.Properties.Get", iface, name).Store(&v); err != nil {
		m.t.Fatal(err)
	}
	return v.Value()
}

// mockCall is one method call the mock object logged, with its arguments.
type mockCall struct {
	T    uint64
	Name string
	Args []dbus.Variant
}

// callLog lists the calls the mock object logged, with their arguments.
func (m *mock) callLog(path dbus.ObjectPath) []mockCall {
	m.t.Helper()
	var out []mockCall
	if err := m.call(path, "org.freedesktop.DBus.Mock.GetCalls").Store(&out); err != nil {
		m.t.Fatal(err)
	}
	return out
}

// calls lists the method names the mock object logged.
func (m *mock) calls(path dbus.ObjectPath) []string {
	m.t.Helper()
	out := m.callLog(path)
	names := make([]string, len(out))
	for i, c := range out {
		names[i] = c.Name
	}
	return names
}

// events collects a client's events for the test to wait on.
type events struct {
	mu   sync.Mutex
	all  []Event
	ping chan struct{}
}

func newEvents() *events { return &events{ping: make(chan struct{}, 1)} }

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ping <- struct{}{}:
	default:
	}
}

// wait returns the first event (from the start) for which ok holds.
func (e *events) wait(t *testing.T, what string, ok func(Event) bool) Event {
	t.Helper()
	return e.waitFrom(t, 0, what, ok)
}

// mark is where waitFrom starts to look.
func (e *events) mark() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.all)
}

// waitFrom is wait for events after a mark.
func (e *events) waitFrom(t *testing.T, from int, what string, ok func(Event) bool) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		for _, ev := range e.all[from:] {
			if ok(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.ping:
		case <-timeout:
			t.Fatalf("no event: %s", what)
		}
	}
}

func (e *events) count(ok func(Event) bool) int { return e.countFrom(0, ok) }

// countFrom counts the events after a mark for which ok holds.
func (e *events) countFrom(from int, ok func(Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all[from:] {
		if ok(ev) {
			n++
		}
	}
	return n
}

// fixture is a bus, the mock, and a started Client.
type fixture struct {
	addr string
	m    *mock
	c    *Client
	ev   *events
	conn *dbus.Conn
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	addr := startBus(t)
	mockPython(t)
	f := &fixture{addr: addr, ev: newEvents()}
	f.m = startMock(t, addr, connect(t, addr))
	f.conn = connect(t, addr)
	if o.OnEvent == nil {
		o.OnEvent = f.ev.add
	}
	f.c = New(f.conn, o)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.c.Close)
	return f
}

func isDevice(addr string, cond func(Device) bool) func(Event) bool {
	return func(ev Event) bool {
		return ev.Type == EventDevice && ev.Device != nil && ev.Device.Address == addr && cond(*ev.Device)
	}
}
