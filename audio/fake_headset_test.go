package audio

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakePulse is a FAKE: it stands for PulseAudio's D-Bus protocol with one
// Bluetooth headset card, which this machine cannot have (no radio) and
// the virtual board gives only once a headset is paired there. It speaks
// the real wire protocol over a peer-to-peer connection, with PulseAudio's
// object paths, property types, error names and signals, so the client
// under test is the real one. Profile switches create and remove the
// card's sink and source the way module-bluez5-device does.
type fakePulse struct {
	t    *testing.T
	conn *dbus.Conn // the fake's side

	mu       sync.Mutex
	objs     map[dbus.ObjectPath]*fakeObj
	card     dbus.ObjectPath
	profiles []dbus.ObjectPath
	devices  []dbus.ObjectPath
	next     int
}

type fakeObj struct {
	f     *fakePulse
	path  dbus.ObjectPath
	props map[string]map[string]any
	// set is called for a writable property; nil means read-only.
	set func(iface, name string, v any) *dbus.Error
}

const fakeHeadset = "bluez_card.00_AA_01_01_00_01"

type fakeProfile struct {
	name           string
	available      bool
	sinks, sources uint32
	priority       uint32
}

// newFakePulse serves the fake on one end of a pipe and returns a Client
// connected to the other end, authenticated like a real p2p connection.
func newFakePulse(t *testing.T, profiles []fakeProfile, opts Options) (*fakePulse, *Client) {
	t.Helper()
	client, server := saslPair(t)
	f := &fakePulse{t: t, conn: server, objs: map[dbus.ObjectPath]*fakeObj{}, card: corePath + "/card0"}
	core := f.add(corePath, map[string]map[string]any{ifaceCore: {
		"Name": "pulseaudio", "Version": "16.1-fake", "Cards": []dbus.ObjectPath{f.card},
		"Sinks": []dbus.ObjectPath{}, "Sources": []dbus.ObjectPath{},
		"FallbackSink": dbus.ObjectPath("/"), "FallbackSource": dbus.ObjectPath("/"),
	}})
	core.set = func(iface, name string, v any) *dbus.Error {
		p, ok := v.(dbus.ObjectPath)
		if !ok || (name != "FallbackSink" && name != "FallbackSource") {
			return &dbus.Error{Name: errNameInvalidArgs, Body: []any{"bad value"}}
		}
		if _, ok := f.objs[p]; !ok {
			return &dbus.Error{Name: errNameNotFound, Body: []any{"No such device."}}
		}
		core.props[ifaceCore][name] = p
		f.emit(corePath, ifaceCore+"."+name+"Updated", p)
		return nil
	}
	var active dbus.ObjectPath
	for i, p := range profiles {
		pp := dbus.ObjectPath(fmt.Sprintf("%s/profile%d", f.card, i))
		f.profiles = append(f.profiles, pp)
		f.add(pp, map[string]map[string]any{ifaceProfile: {
			"Index": uint32(i), "Name": p.name, "Description": p.name, "Priority": p.priority,
			"Available": p.available, "Sinks": p.sinks, "Sources": p.sources,
		}})
		if p.name == "off" {
			active = pp
		}
	}
	card := f.add(f.card, map[string]map[string]any{ifaceCard: {
		"Index": uint32(0), "Name": fakeHeadset, "Driver": "module-bluez5-device.c",
		"Profiles": f.profiles, "ActiveProfile": active, "Sinks": []dbus.ObjectPath{}, "Sources": []dbus.ObjectPath{},
		"PropertyList": map[string][]byte{"device.bus": []byte("bluetooth\x00"), "device.description": []byte("fake headset\x00")},
	}})
	card.set = func(iface, name string, v any) *dbus.Error {
		p, ok := v.(dbus.ObjectPath)
		if !ok || name != "ActiveProfile" {
			return &dbus.Error{Name: errNameInvalidArgs, Body: []any{"Expected an object path"}}
		}
		pr, ok := f.objs[p]
		if !ok || !strings.HasPrefix(string(p), string(f.card)+"/profile") {
			return &dbus.Error{Name: errNameNotFound, Body: []any{string(p) + ": No such profile."}}
		}
		props := pr.props[ifaceProfile]
		if !props["Available"].(bool) {
			return &dbus.Error{Name: "org.freedesktop.DBus.Error.IOError", Body: []any{"Input/output error"}}
		}
		f.switchTo(props["Name"].(string), props["Sinks"].(uint32), props["Sources"].(uint32))
		card.props[ifaceCard]["ActiveProfile"] = p
		f.emit(f.card, ifaceCard+".ActiveProfileUpdated", p)
		return nil
	}
	if err := server.Export(fakeCore{f}, corePath, ifaceCore); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); server.Close() })
	return f, c
}

// switchTo replaces the card's devices with the profile's; f.mu is held.
func (f *fakePulse) switchTo(profile string, sinks, sources uint32) {
	core := f.objs[corePath].props[ifaceCore]
	for _, d := range f.devices {
		kind := "Sink"
		if strings.Contains(string(d), "/source") {
			kind = "Source"
		}
		f.conn.Export(nil, d, ifaceProps)
		delete(f.objs, d)
		f.emit(corePath, ifaceCore+"."+kind+"Removed", d)
	}
	f.devices = nil
	core["Sinks"], core["Sources"] = []dbus.ObjectPath{}, []dbus.ObjectPath{}
	mac := strings.TrimPrefix(fakeHeadset, "bluez_card.")
	for _, k := range []struct {
		kind, prefix string
		n            uint32
	}{{"sink", "bluez_sink.", sinks}, {"source", "bluez_source.", sources}} {
		if k.n == 0 {
			continue
		}
		p := dbus.ObjectPath(fmt.Sprintf("%s/%s%d", corePath, k.kind, f.next))
		f.next++
		f.add(p, map[string]map[string]any{ifaceDevice: {
			"Index": uint32(f.next), "Name": k.prefix + mac + "." + profile, "Driver": "module-bluez5-device.c",
			"Card": f.card, "SampleRate": uint32(16000), "Volume": []uint32{VolumeNorm}, "Channels": []uint32{0},
			"Mute": false, "State": uint32(1), "Ports": []dbus.ObjectPath{},
			"PropertyList": map[string][]byte{},
		}})
		f.devices = append(f.devices, p)
		key := map[string]string{"sink": "Sinks", "source": "Sources"}[k.kind]
		core[key] = append(core[key].([]dbus.ObjectPath), p)
		f.emit(corePath, ifaceCore+".New"+strings.ToUpper(k.kind[:1])+k.kind[1:], p)
	}
	f.objs[f.card].props[ifaceCard]["Sinks"] = append([]dbus.ObjectPath{}, core["Sinks"].([]dbus.ObjectPath)...)
	f.objs[f.card].props[ifaceCard]["Sources"] = append([]dbus.ObjectPath{}, core["Sources"].([]dbus.ObjectPath)...)
}

// setAvailable changes a profile's availability and signals it, as
// PulseAudio does when the headset connects or drops a profile.
func (f *fakePulse) setAvailable(profile string, avail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.profiles {
		if props := f.objs[p].props[ifaceProfile]; props["Name"] == profile {
			props["Available"] = avail
			f.emit(f.card, ifaceCard+".ProfileAvailableChanged", p, avail)
		}
	}
}

func (f *fakePulse) emit(path dbus.ObjectPath, name string, args ...any) {
	if err := f.conn.Emit(path, name, args...); err != nil {
		f.t.Logf("fake: cannot emit %s: %v", name, err)
	}
}

func (f *fakePulse) add(p dbus.ObjectPath, props map[string]map[string]any) *fakeObj {
	o := &fakeObj{f: f, path: p, props: props}
	f.objs[p] = o
	if err := f.conn.Export(o, p, ifaceProps); err != nil {
		f.t.Fatal(err)
	}
	return o
}

func (o *fakeObj) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	v, ok := o.props[iface][name]
	if !ok {
		return dbus.Variant{}, &dbus.Error{Name: errNameNoSuchProp, Body: []any{iface + "." + name + ": No such property"}}
	}
	return dbus.MakeVariant(v), nil
}

func (o *fakeObj) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	m := map[string]dbus.Variant{}
	for k, v := range o.props[iface] {
		m[k] = dbus.MakeVariant(v)
	}
	return m, nil
}

func (o *fakeObj) Set(iface, name string, v dbus.Variant) *dbus.Error {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	if o.set == nil {
		return &dbus.Error{Name: "org.PulseAudio.Core1.NoSuchPropertyError", Body: []any{name + " is read-only"}}
	}
	return o.set(iface, name, v.Value())
}

// fakeCore is org.PulseAudio.Core1's methods.
type fakeCore struct{ f *fakePulse }

func (c fakeCore) ListenForSignal(string, []dbus.ObjectPath) *dbus.Error { return nil }

func (c fakeCore) GetSinkByName(name string) (dbus.ObjectPath, *dbus.Error) {
	return c.byName(name, "/sink")
}

func (c fakeCore) GetSourceByName(name string) (dbus.ObjectPath, *dbus.Error) {
	return c.byName(name, "/source")
}

func (c fakeCore) byName(name, kind string) (dbus.ObjectPath, *dbus.Error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	for _, d := range c.f.devices {
		if strings.Contains(string(d), kind) && c.f.objs[d].props[ifaceDevice]["Name"] == name {
			return d, nil
		}
	}
	return "", &dbus.Error{Name: errNameNotFound, Body: []any{name + ": No such device."}}
}

// saslPair returns two authenticated godbus connections joined to each
// other: each thinks it authenticated to a server (this relay answers the
// SASL exchange of both), then the relay copies bytes both ways. One end
// plays PulseAudio, the other is the client under test.
func saslPair(t *testing.T) (*dbus.Conn, *dbus.Conn) {
	t.Helper()
	a, ra := net.Pipe()
	b, rb := net.Pipe()
	serve := func(rw net.Conn) error {
		if _, err := io.ReadFull(rw, make([]byte, 1)); err != nil { // the NUL byte
			return err
		}
		for {
			line, err := readLine(rw)
			if err != nil {
				return err
			}
			switch {
			case line == "AUTH":
				io.WriteString(rw, "REJECTED EXTERNAL\r\n")
			case strings.HasPrefix(line, "AUTH EXTERNAL"):
				io.WriteString(rw, "OK 0123456789abcdef0123456789abcdef\r\n")
			case line == "BEGIN":
				return nil
			default:
				io.WriteString(rw, "ERROR\r\n")
			}
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- serve(ra) }()
	go func() { errs <- serve(rb) }()
	conns := make(chan *dbus.Conn, 2)
	for _, end := range []net.Conn{a, b} {
		go func() {
			c, err := dbus.NewConn(end)
			if err == nil {
				err = c.Auth([]dbus.Auth{dbus.AuthExternal("0")})
			}
			if err != nil {
				errs <- err
				return
			}
			conns <- c
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	go io.Copy(ra, rb)
	go io.Copy(rb, ra)
	c1, c2 := <-conns, <-conns
	// Which is which does not matter: both ends speak plain D-Bus now.
	return c1, c2
}

// readLine reads one "\r\n"-terminated line a byte at a time, so nothing
// after BEGIN is consumed.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		if _, err := r.Read(buf); err != nil {
			return "", err
		}
		if buf[0] == '\n' {
			return strings.TrimSuffix(b.String(), "\r"), nil
		}
		b.WriteByte(buf[0])
	}
}
