package wifi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/testbus"
	"github.com/boxagent/boxagent/internal/wpabus"

	"github.com/godbus/dbus/v5"
)

// A fake wpa_supplicant on a private dbus-daemon (the real daemon, the
// test's config): it answers the calls the client makes and emits the
// signals a scripted join would, so the client's reading of them is
// tested without radios. It stands for wpa_supplicant only; the lab
// tests (wifi_lab_test.go) drive the real one.

// wifiFakeBus runs a private dbus-daemon and returns its address.
func wifiFakeBus(t *testing.T) string {
	t.Helper()
	return testbus.Start(t)
}

const fakeIfacePath = dbus.ObjectPath("/fi/w1/wpa_supplicant1/Interfaces/0")

type fakeWPA struct {
	t    *testing.T
	conn *dbus.Conn

	mu    sync.Mutex
	props map[string]dbus.Variant
	nets  []dbus.ObjectPath
	// onSelect scripts what happens after SelectNetwork.
	onSelect func(f *fakeWPA, net dbus.ObjectPath)
}

func startFakeWPA(t *testing.T, addr string) *fakeWPA {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeWPA{t: t, conn: conn, props: map[string]dbus.Variant{
		"State": dbus.MakeVariant("disconnected"), "CurrentNetwork": dbus.MakeVariant(dbus.ObjectPath("/")),
		"CurrentBSS": dbus.MakeVariant(dbus.ObjectPath("/")), "BSSs": dbus.MakeVariant([]dbus.ObjectPath{}),
		"Networks": dbus.MakeVariant([]dbus.ObjectPath{}), "Scanning": dbus.MakeVariant(false),
	}}
	conn.Export(fakeRoot{f}, wpabus.Path, wpabus.Service)
	conn.Export(fakeIface{f}, fakeIfacePath, wpabus.Iface)
	conn.Export(fakeProps{f}, fakeIfacePath, wpabus.Props)
	if reply, err := conn.RequestName(wpabus.Service, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("cannot own %s: %v %v", wpabus.Service, reply, err)
	}
	return f
}

// set changes interface properties and announces the ones in announce.
func (f *fakeWPA) set(announce bool, kv ...any) {
	changed := map[string]dbus.Variant{}
	f.mu.Lock()
	for i := 0; i < len(kv); i += 2 {
		v := dbus.MakeVariant(kv[i+1])
		f.props[kv[i].(string)] = v
		changed[kv[i].(string)] = v
	}
	f.mu.Unlock()
	if announce {
		f.emit(fakeIfacePath, wpabus.Props+".PropertiesChanged", wpabus.Iface, changed, []string{})
	}
}

func (f *fakeWPA) emit(path dbus.ObjectPath, name string, args ...any) {
	if err := f.conn.Emit(path, name, args...); err != nil {
		f.t.Errorf("emit %s: %v", name, err)
	}
}

// addBSS announces an AP.
func (f *fakeWPA) addBSS(n int, ssid string, signal int16, keyMgmt ...string) dbus.ObjectPath {
	p := dbus.ObjectPath(fmt.Sprintf("%s/BSSs/%d", fakeIfacePath, n))
	f.emit(fakeIfacePath, wpabus.Iface+".BSSAdded", p, map[string]dbus.Variant{
		"SSID": dbus.MakeVariant([]byte(ssid)), "BSSID": dbus.MakeVariant([]byte{2, 0, 0, 0, 0, byte(n)}),
		"Signal": dbus.MakeVariant(signal), "Frequency": dbus.MakeVariant(uint16(2437)), "Privacy": dbus.MakeVariant(len(keyMgmt) > 0),
		"RSN": dbus.MakeVariant(map[string]dbus.Variant{"KeyMgmt": dbus.MakeVariant(keyMgmt)}),
		"WPA": dbus.MakeVariant(map[string]dbus.Variant{}),
	})
	return p
}

type fakeRoot struct{ f *fakeWPA }

func (r fakeRoot) GetInterface(name string) (dbus.ObjectPath, *dbus.Error) {
	return "", dbus.NewError(wpabus.Service+".InterfaceUnknown", []any{"wpa_supplicant knows nothing about this interface."})
}

func (r fakeRoot) CreateInterface(args map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	if args["Ifname"].Value() != "wlan1" {
		return "", dbus.NewError(wpabus.Service+".UnknownError", []any{"wpa_supplicant couldn't grab this interface."})
	}
	return fakeIfacePath, nil
}

type fakeIface struct{ f *fakeWPA }

func (i fakeIface) AddNetwork(args map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	f := i.f
	f.mu.Lock()
	p := dbus.ObjectPath(fmt.Sprintf("%s/Networks/%d", fakeIfacePath, len(f.nets)))
	f.nets = append(f.nets, p)
	f.mu.Unlock()
	f.conn.Export(fakeProps{f}, p, wpabus.Props)
	return p, nil
}

func (i fakeIface) SelectNetwork(p dbus.ObjectPath) *dbus.Error {
	i.f.mu.Lock()
	script := i.f.onSelect
	i.f.mu.Unlock()
	if script != nil {
		go script(i.f, p)
	}
	return nil
}

func (f *fakeWPA) script(fn func(f *fakeWPA, net dbus.ObjectPath)) {
	f.mu.Lock()
	f.onSelect = fn
	f.mu.Unlock()
}

func (i fakeIface) RemoveNetwork(p dbus.ObjectPath) *dbus.Error {
	i.f.emit(fakeIfacePath, wpabus.Iface+".NetworkRemoved", p)
	return nil
}

func (i fakeIface) Scan(args map[string]dbus.Variant) *dbus.Error {
	go func() {
		i.f.addBSS(7, "scanned", -50, "sae")
		i.f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
	}()
	return nil
}

func (i fakeIface) SignalPoll() (map[string]dbus.Variant, *dbus.Error) {
	return map[string]dbus.Variant{"rssi": dbus.MakeVariant(int32(-42)), "linkspeed": dbus.MakeVariant(int32(54))}, nil
}

type fakeProps struct{ f *fakeWPA }

func (p fakeProps) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if v, ok := p.f.props[name]; ok && iface == wpabus.Iface {
		return v, nil
	}
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"no such property " + name})
}

func (p fakeProps) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	m := map[string]dbus.Variant{}
	for k, v := range p.f.props {
		m[k] = v
	}
	return m, nil
}

func (p fakeProps) Set(iface, name string, v dbus.Variant) *dbus.Error { return nil }

// openFakeWiFi starts the fake and opens the client on wlan1.
func openFakeWiFi(t *testing.T, more ...func(*Options)) (*fakeWPA, *Client, chan Event) {
	t.Helper()
	addr := wifiFakeBus(t)
	f := startFakeWPA(t, addr)
	conn, err := dbus.Connect(addr, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	events := make(chan Event, 64)
	o := Options{Interface: "wlan1", OnEvent: func(e Event) {
		select {
		case events <- e:
		default: // a test that stopped listening must not stall the client
		}
	}}
	for _, m := range more {
		m(&o)
	}
	w, err := Open(context.Background(), conn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return f, w, events
}

// join scripts a join that reaches completed. CurrentNetwork is never
// announced, as real wpa_supplicant often does not: the client must read
// it at the state change.
func joinOK(f *fakeWPA, net dbus.ObjectPath) {
	f.set(true, "State", "associating")
	f.set(false, "CurrentNetwork", net, "CurrentBSS", dbus.ObjectPath(fakeIfacePath+"/BSSs/1"))
	f.set(true, "State", "completed")
}

func TestFakeWiFiConnect(t *testing.T) {
	f, w, events := openFakeWiFi(t)
	bss := f.addBSS(1, "home", -40, "wpa-psk")
	// A signal change of the BSS after it was added: applied in order.
	f.emit(bss, wpabus.Props+".PropertiesChanged", wpabus.BSSIface, map[string]dbus.Variant{"Signal": dbus.MakeVariant(int16(-55))}, []string{})
	// Signals are handled in order: once the scan event is out, the BSS
	// and its change are in.
	f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
	waitFakeEvent(t, events, func(e Event) bool { return e.Kind == "scan" })
	if b := w.BSSs(); len(b) != 1 || b[0].Signal != -55 || b[0].Security != SecurityWPA2 {
		t.Fatalf("BSSs = %+v", b)
	}
	f.script(joinOK)
	st, err := w.Connect(context.Background(), Network{SSID: "home", PSK: "password1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateCompleted || st.SSID != "home" || st.Security != SecurityWPA2 || st.Signal != -55 {
		t.Errorf("status = %+v", st)
	}
	waitFakeEvent(t, events, func(e Event) bool {
		return e.Kind == "state" && e.State == StateCompleted && e.SSID == "home"
	})
	if sig, err := w.SignalPoll(context.Background()); err != nil || sig.RSSI != -42 || sig.LinkSpeed != 54 {
		t.Errorf("SignalPoll = %+v, %v", sig, err)
	}
	bssList, err := w.Scan(context.Background(), 5*time.Second)
	if err != nil || len(bssList) != 2 || bssList[0].SSID != "scanned" || bssList[0].Security != SecurityWPA3 {
		t.Errorf("Scan = %+v, %v", bssList, err)
	}
}

// TestFakeWiFiOnChange: a change of the joined BSS's signal strength
// comes with no event, but with OnChange (the agent's status line shows
// the signal).
func TestFakeWiFiOnChange(t *testing.T) {
	changed := make(chan struct{}, 1)
	f, w, events := openFakeWiFi(t, func(o *Options) {
		o.OnChange = func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	})
	bss := f.addBSS(1, "home", -40, "wpa-psk")
	f.script(joinOK)
	if _, err := w.Connect(context.Background(), Network{SSID: "home", PSK: "password1"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFakeEvent(t, events, func(e Event) bool { return e.Kind == "state" && e.State == StateCompleted })
	for len(events) > 0 {
		<-events
	}
	select {
	case <-changed: // the join's
	default:
	}
	f.emit(bss, wpabus.Props+".PropertiesChanged", wpabus.BSSIface, map[string]dbus.Variant{"Signal": dbus.MakeVariant(int16(-71))}, []string{})
	// Called once the change is applied: Status shows it from then on.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no OnChange with the new signal: status %+v", w.Status())
		}
		if w.Status().Signal == -71 {
			break
		}
	}
	select {
	case e := <-events:
		t.Errorf("a signal change made an event: %+v", e)
	default:
	}
}

func waitFakeEvent(t *testing.T, events chan Event, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatal("no such event within 5s")
		}
	}
}

func TestFakeWiFiFailures(t *testing.T) {
	f, w, events := openFakeWiFi(t)
	f.addBSS(1, "home", -40, "wpa-psk")
	f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
	waitFakeEvent(t, events, func(e Event) bool { return e.Kind == "scan" })
	for _, c := range []struct {
		name   string
		script func(f *fakeWPA, net dbus.ObjectPath)
		want   error
		detail string
	}{
		{"psk mismatch", func(f *fakeWPA, net dbus.ObjectPath) {
			f.set(true, "State", "4way_handshake")
			f.emit(fakeIfacePath, wpabus.Iface+".PskMismatch")
			f.set(true, "State", "disconnected", "DisconnectReason", int32(-3))
		}, ErrWrongPassword, "4-way handshake failed"},
		{"auth refused", func(f *fakeWPA, net dbus.ObjectPath) {
			f.set(true, "State", "authenticating")
			f.set(true, "AuthStatusCode", int32(17))
			f.set(true, "State", "disconnected")
		}, ErrRejected, "the AP cannot handle more stations (17)"},
		{"nothing answers", func(f *fakeWPA, net dbus.ObjectPath) {
			f.set(true, "State", "scanning")
			f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
			f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
		}, ErrNotFound, "no AP answered in 2 scans"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.script(c.script)
			ssid := "home"
			if c.want == ErrNotFound {
				ssid = "elsewhere"
			}
			_, err := w.Connect(context.Background(), Network{SSID: ssid, PSK: "password1"}, 5*time.Second)
			var we *Error
			if !errors.Is(err, c.want) || !errors.As(err, &we) || !strings.Contains(we.Detail, c.detail) {
				t.Fatalf("Connect = %v; want %v (%s)", err, c.want, c.detail)
			}
			if strings.Contains(err.Error(), "password1") {
				t.Errorf("the error shows the PSK: %v", err)
			}
			for _, k := range w.Status().Known {
				if k.SSID == ssid {
					t.Errorf("the failed network was kept: %+v", w.Status().Known)
				}
			}
		})
	}
}

func TestFakeWiFiGone(t *testing.T) {
	f, w, events := openFakeWiFi(t)
	f.conn.ReleaseName(wpabus.Service)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == "gone" {
				if st := w.Status(); st.State != StateAbsent {
					t.Errorf("state after gone: %s", st.State)
				}
				_, err := w.Connect(context.Background(), Network{SSID: "x"}, time.Second)
				if err == nil {
					t.Error("Connect worked without wpa_supplicant")
				}
				return
			}
		case <-deadline:
			t.Fatal("no gone event when wpa_supplicant left the bus")
		}
	}
}

func TestFakeWiFiNoInterface(t *testing.T) {
	addr := wifiFakeBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := Open(context.Background(), conn, Options{Interface: "wlan1"}); !errors.Is(err, ErrNoSupplicant) {
		t.Errorf("without wpa_supplicant: %v", err)
	}
	startFakeWPA(t, addr)
	if _, err := Open(context.Background(), conn, Options{Interface: "wlan7"}); !errors.Is(err, ErrNoInterface) {
		t.Errorf("unknown interface: %v", err)
	}
}

// TestFakeWiFiDropThroughHandshake: a lost link may pass through a
// handshake state on its way out; it is still one drop, and a rekey that
// comes back to completed is none.
func TestFakeWiFiDropThroughHandshake(t *testing.T) {
	f, w, events := openFakeWiFi(t)
	f.addBSS(1, "home", -40, "wpa-psk")
	f.script(joinOK)
	if _, err := w.Connect(context.Background(), Network{SSID: "home", PSK: "password1"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	f.set(true, "State", "group_handshake")
	f.set(true, "State", "completed")
	f.set(true, "DisconnectReason", int32(-1))
	f.set(true, "State", "4way_handshake")
	f.set(true, "State", "scanning")
	f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
	var drops int
	for e := waitFakeEvent(t, events, func(e Event) bool { return e.Kind == "scan" || e.Kind == "dropped" }); ; e = waitFakeEvent(t, events, func(e Event) bool { return e.Kind == "scan" || e.Kind == "dropped" }) {
		if e.Kind == "scan" {
			break
		}
		drops++
		if e.State != "scanning" {
			t.Errorf("drop event %+v", e)
		}
	}
	if drops != 1 {
		t.Errorf("%d drop events, want 1", drops)
	}
}
