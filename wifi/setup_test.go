package wifi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/clock/clocktest"
	"github.com/boxagent/boxagent/internal/wpabus"
)

// The setup hotspot's state machine on the fake wpa_supplicant
// (fake_test.go), a fake clock and a fake radio: the hotspot's pieces
// and the give-way's watch need root and radios (the board's tests
// bring them up: hotspot_lab_test.go, hotspot_giveway_lab_test.go);
// the states, the timer, the joins and what is saved do not.

var setupT0 = time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)

// setupFixture is a Setup on a fake wpa_supplicant with what the agent
// would pass it, recorded.
type setupFixture struct {
	t      *testing.T
	f      *fakeWPA
	w      *Client
	events chan Event // the client's, once the Setup has seen them
	clock  *clocktest.Fake
	radio  *fakeRadio
	s      *Setup
	ctx    context.Context
	stop   context.CancelFunc

	mu        sync.Mutex
	cfg       Config
	absent    error // Client's answer, when set
	ops       []string
	published []map[string]string
	saves     int
}

// setupConfig is a [wifi] section that opens the hotspot after a
// minute and knows "home".
func setupConfig() Config {
	return Config{SetupAfter: "1m", Networks: []Network{{SSID: "home", PSK: "password1", Priority: 5}}}
}

func newSetupFixture(t *testing.T, cfg Config, before ...func(*fakeWPA)) *setupFixture {
	t.Helper()
	fx := &setupFixture{t: t, clock: clocktest.New(setupT0), radio: &fakeRadio{}, cfg: cfg}
	fx.ctx, fx.stop = context.WithCancel(context.Background())
	t.Cleanup(fx.stop)
	fx.s = NewSetup(SetupOptions{
		Clock:           fx.clock,
		CredentialsFile: t.TempDir() + "/wifi-setup.json",
		Config: func() Config {
			fx.mu.Lock()
			defer fx.mu.Unlock()
			return fx.cfg
		},
		Client: func() (*Client, error) {
			fx.mu.Lock()
			defer fx.mu.Unlock()
			if fx.absent != nil {
				return nil, fx.absent
			}
			return fx.w, nil
		},
		Operate: func(kind, _ string, run func(context.Context) (any, error)) error {
			fx.mu.Lock()
			fx.ops = append(fx.ops, kind)
			fx.mu.Unlock()
			_, err := run(fx.ctx)
			return err
		},
		Publish: func(data map[string]string) {
			fx.mu.Lock()
			fx.published = append(fx.published, data)
			fx.mu.Unlock()
		},
		Save: func(update func([]Network) []Network) error {
			fx.mu.Lock()
			defer fx.mu.Unlock()
			fx.saves++
			fx.cfg.Networks = update(slices.Clone(fx.cfg.Networks))
			return nil
		},
		ErrorCode: func(err error) string {
			if errors.Is(err, ErrWrongPassword) {
				return "wifi.wrong_password"
			}
			return ""
		},
	})
	fx.s.radio = fx.radio
	addr := wifiFakeBus(t)
	fx.f = startFakeWPA(t, addr)
	for _, b := range before {
		b(fx.f)
	}
	conn, err := dbus.Connect(addr, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fx.events = make(chan Event, 64)
	w, err := Open(context.Background(), conn, Options{Interface: "wlan1", OnEvent: func(e Event) {
		fx.s.OnEvent(e) // as the agent wires it
		select {
		case fx.events <- e:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	fx.mu.Lock()
	fx.w = w
	fx.mu.Unlock()
	// In range: home twice, a hidden network, an open one.
	fx.f.addBSS(1, "home", -60, "wpa-psk")
	fx.f.addBSS(2, "home", -40, "wpa-psk")
	fx.f.addBSS(3, "", -30, "wpa-psk")
	fx.f.addBSS(4, "cafe", -70)
	fx.f.emit(fakeIfacePath, wpabus.Iface+".ScanDone", true)
	waitFakeEvent(t, fx.events, func(e Event) bool { return e.Kind == "scan" })
	return fx
}

// opened tells the Setup the client opened, as the agent does.
func (fx *setupFixture) opened() { fx.s.Opened(fx.ctx, fx.w) }

// open starts the hotspot by hand.
func (fx *setupFixture) open() {
	fx.t.Helper()
	if _, err := fx.s.Start(fx.ctx, false); err != nil {
		fx.t.Fatal(err)
	}
}

// kinds are the "kind"s of the events published.
func (fx *setupFixture) kinds() []string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var k []string
	for _, e := range fx.published {
		k = append(k, e["kind"])
	}
	return k
}

func (fx *setupFixture) operations() []string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return slices.Clone(fx.ops)
}

func (fx *setupFixture) saved() []Network {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return slices.Clone(fx.cfg.Networks)
}

// fakeRadio brings up hotspots that are only counted, and watches that
// find what the test says.
type fakeRadio struct {
	mu      sync.Mutex
	upErr   error // the next ups fail with it
	ups     int
	downs   int
	cleared int
	watches []*fakeWatch
}

func (r *fakeRadio) up(_ context.Context, w *Client, o HotspotOptions) (setupHotspot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.upErr != nil {
		return nil, r.upErr
	}
	r.ups++
	return fakeHotspot{r}, nil
}

func (r *fakeRadio) watch(_ context.Context, _ *Client, o GiveWayOptions) (Watcher, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fw := &fakeWatch{found: o.Found}
	for _, n := range o.Saved {
		fw.ssids = append(fw.ssids, n.SSID)
	}
	r.watches = append(r.watches, fw)
	return fw, nil
}

func (r *fakeRadio) clearWatch(context.Context, *Client, *slog.Logger) error {
	r.mu.Lock()
	r.cleared++
	r.mu.Unlock()
	return nil
}

func (r *fakeRadio) counts() (ups, downs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ups, r.downs
}

type fakeHotspot struct{ r *fakeRadio }

func (fakeHotspot) Credentials() HotspotCredentials {
	return HotspotCredentials{SSID: "boxagent-0001", Password: "abcdefghjkmn"}
}
func (fakeHotspot) Clients() int { return 2 }
func (h fakeHotspot) close(context.Context) error {
	h.r.mu.Lock()
	h.r.downs++
	h.r.mu.Unlock()
	return nil
}

// TestSetupAfter: the setup_after timer opens the hotspot, as an
// operation of the agent's own, unless a known network joins first.
func TestSetupAfter(t *testing.T) {
	for _, c := range []struct {
		name       string
		setupAfter SetupAfter
		before     func(*fakeWPA)      // wpa_supplicant before the client opens
		meanwhile  func(*setupFixture) // between Opened and the wait's end
		wantOps    []string            // the operations run
		wantState  string              // the hotspot's, after the wait
	}{
		{name: "no network joins", setupAfter: "1m", wantOps: []string{"wifi.setup.start"}, wantState: SetupOn},
		{name: "a network joins first", setupAfter: "1m", meanwhile: func(fx *setupFixture) {
			fx.f.set(true, "State", "completed")
			waitFakeEvent(fx.t, fx.events, func(e Event) bool { return e.Kind == "state" && e.State == StateCompleted })
		}, wantState: SetupOff},
		{name: "the link is up already", setupAfter: "1m", before: func(f *fakeWPA) { f.set(false, "State", "completed") },
			wantState: SetupOff},
		{name: "setup_after is never", setupAfter: "0", wantState: SetupOff},
		{name: "the client closes first", setupAfter: "1m", meanwhile: func(fx *setupFixture) { fx.s.Closing() },
			wantState: SetupOff},
		{name: "the agent stops first", setupAfter: "1m", meanwhile: func(fx *setupFixture) { fx.stop() },
			wantState: SetupOff},
		{name: "opened by hand first", setupAfter: "1m", meanwhile: func(fx *setupFixture) { fx.open() },
			wantState: SetupOn},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := setupConfig()
			cfg.SetupAfter = c.setupAfter
			var before []func(*fakeWPA)
			if c.before != nil {
				before = append(before, c.before)
			}
			fx := newSetupFixture(t, cfg, before...)
			fx.opened()
			if c.meanwhile != nil {
				c.meanwhile(fx)
			}
			fx.clock.Advance(59 * time.Second)
			if ops := fx.operations(); len(ops) > 0 {
				t.Fatalf("operations before setup_after: %v", ops)
			}
			fx.clock.Advance(time.Second)
			if ops := fx.operations(); !slices.Equal(ops, c.wantOps) {
				t.Errorf("operations %v, want %v", ops, c.wantOps)
			}
			st := fx.s.Status(false)
			if st.State != c.wantState || st.Auto != (c.wantOps != nil) {
				t.Errorf("status %+v, want state %s", st, c.wantState)
			}
			if c.setupAfter == "1m" && st.SetupAfter != "1m0s" {
				t.Errorf("status says setup_after %q", st.SetupAfter)
			}
			if fx.clock.FireNext() {
				t.Error("a timer is still pending")
			}
		})
	}
}

// TestSetupStart: the scan before the AP is the page's list; the
// hotspot opens once; a hotspot that cannot open leaves the state off.
func TestSetupStart(t *testing.T) {
	absent := errors.New("Wi-Fi is not available")
	for _, c := range []struct {
		name      string
		absent    error
		upErr     error
		twice     bool
		wantErr   error
		wantState string
		wantUps   int
		wantKinds []string
	}{
		{name: "opens", wantState: SetupOn, wantUps: 1, wantKinds: []string{"up"}},
		{name: "open already", twice: true, wantState: SetupOn, wantUps: 1, wantKinds: []string{"up"}},
		{name: "cannot open", upErr: errors.New("no AP mode"), wantErr: errors.New("no AP mode"), wantState: SetupOff},
		{name: "no client", absent: absent, wantErr: absent, wantState: SetupOff}, // and no status
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newSetupFixture(t, setupConfig())
			fx.absent, fx.radio.upErr = c.absent, c.upErr
			st, err := fx.s.Start(fx.ctx, false)
			if c.twice {
				st, err = fx.s.Start(fx.ctx, false)
			}
			if (err == nil) != (c.wantErr == nil) || err != nil && err.Error() != c.wantErr.Error() {
				t.Fatalf("Start = %v, want %v", err, c.wantErr)
			}
			if c.absent == nil && st.State != c.wantState {
				t.Errorf("Start answered %+v, want %s", st, c.wantState)
			}
			if ups, _ := fx.radio.counts(); fx.s.Status(false).State != c.wantState || ups != c.wantUps {
				t.Errorf("status %+v after %d ups; want %s after %d", fx.s.Status(false), ups, c.wantState, c.wantUps)
			}
			if k := fx.kinds(); !slices.Equal(k, c.wantKinds) {
				t.Errorf("events %v, want %v", k, c.wantKinds)
			}
			if c.wantState != SetupOn {
				if st := fx.s.Status(false); st.SSID != "" || st.Since != nil || fx.s.Active() {
					t.Errorf("a hotspot that is off shows %+v", st)
				}
				return
			}
			if !fx.s.Active() || st.Auto || st.SSID != "boxagent-0001" || st.Address != "192.168.4.1" ||
				st.URL != "http://192.168.4.1/" || st.Clients != 2 || st.Since == nil || !st.Since.Equal(setupT0) {
				t.Errorf("status %+v", st)
			}
			// One line per SSID, its strongest; no hidden one.
			var list []string
			for _, b := range fx.s.Networks() {
				list = append(list, fmt.Sprintf("%s %d", b.SSID, b.Signal))
			}
			if want := []string{"home -40", "scanned -50", "cafe -70"}; !slices.Equal(list, want) {
				t.Errorf("networks %v, want %v", list, want)
			}
		})
	}
}

// TestSetupStatusPassword: the password only when asked for (the API
// asks over its unix socket only).
func TestSetupStatusPassword(t *testing.T) {
	fx := newSetupFixture(t, setupConfig())
	fx.open()
	if st := fx.s.Status(true); st.Password != "abcdefghjkmn" {
		t.Errorf("Status(true) = %+v", st)
	}
	if st := fx.s.Status(false); st.Password != "" {
		t.Errorf("Status(false) shows the password")
	}
	// Nor do the events.
	fx.mu.Lock()
	defer fx.mu.Unlock()
	for _, e := range fx.published {
		for _, v := range e {
			if strings.Contains(v, "abcdefghjkmn") {
				t.Errorf("an event shows the password: %v", e)
			}
		}
	}
}

// pskMismatch scripts a join refused for its password.
func pskMismatch(f *fakeWPA, _ dbus.ObjectPath) {
	f.set(true, "State", "4way_handshake")
	f.emit(fakeIfacePath, wpabus.Iface+".PskMismatch")
	f.set(true, "State", "disconnected", "DisconnectReason", int32(-3))
}

// TestSetupConnect: a join from the hotspot closes it, and opens it
// again with the reason when the join fails; a joined network is saved
// with the priority the config gave it.
func TestSetupConnect(t *testing.T) {
	for _, c := range []struct {
		name       string
		hotspot    bool
		script     func(*fakeWPA, dbus.ObjectPath)
		reopenErr  error // the hotspot cannot open again
		wantErr    string
		wantState  string
		wantUps    int
		wantDowns  int
		wantKinds  []string
		wantSaved  bool
		wantLast   string // LastErrorCode
		wantActive bool
	}{
		{name: "joins without the hotspot", script: joinOK, wantState: SetupOff, wantSaved: true},
		{name: "joins from the hotspot", hotspot: true, script: joinOK, wantState: SetupOff,
			wantUps: 1, wantDowns: 1, wantKinds: []string{"up", "down"}, wantSaved: true},
		{name: "a wrong password from the hotspot", hotspot: true, script: pskMismatch, wantErr: "password",
			wantState: SetupOn, wantUps: 2, wantDowns: 1, wantKinds: []string{"up", "down", "up"},
			wantLast: "wifi.wrong_password", wantActive: true},
		{name: "a wrong password then no hotspot", hotspot: true, script: pskMismatch, reopenErr: errors.New("no AP mode"),
			wantErr: "and the setup hotspot could not open again: no AP mode", wantState: SetupOff,
			wantUps: 1, wantDowns: 1, wantKinds: []string{"up", "down"}, wantLast: "wifi.wrong_password"},
		{name: "a wrong password without the hotspot", script: pskMismatch, wantErr: "password", wantState: SetupOff},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := setupConfig()
			cfg.Networks = []Network{{SSID: "home", PSK: "old password", Priority: 5}, {SSID: "work", PSK: "password2"}}
			fx := newSetupFixture(t, cfg)
			if c.hotspot {
				fx.open()
				if !fx.s.ReserveJoin() {
					t.Fatal("an open hotspot takes no join")
				}
			}
			fx.radio.upErr = c.reopenErr
			fx.f.script(c.script)
			st, err := fx.s.Connect(fx.ctx, fx.w, Network{SSID: "home", PSK: "password1"})
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("Connect = %+v, %v; want an error with %q", st, err, c.wantErr)
			}
			if c.wantErr == "" && st.State != StateCompleted {
				t.Errorf("the link is %s", st.State)
			}
			setup := fx.s.Status(false)
			ups, downs := fx.radio.counts()
			if setup.State != c.wantState || ups != c.wantUps || downs != c.wantDowns || fx.s.Active() != c.wantActive {
				t.Errorf("hotspot %s after %d ups, %d downs; want %s after %d, %d", setup.State, ups, downs, c.wantState, c.wantUps, c.wantDowns)
			}
			if k := fx.kinds(); !slices.Equal(k, c.wantKinds) {
				t.Errorf("events %v, want %v", k, c.wantKinds)
			}
			if c.hotspot && (setup.LastSSID != "home" || setup.LastErrorCode != c.wantLast || (setup.LastError == "") != (c.wantErr == "")) {
				t.Errorf("the page is told %+v", setup)
			}
			want := cfg.Networks
			if c.wantSaved {
				want = []Network{{SSID: "home", PSK: "password1", Priority: 5}, cfg.Networks[1]}
			}
			if got := fx.saved(); !slices.Equal(got, want) {
				t.Errorf("saved %+v, want %+v", got, want)
			}
			// The page may try again once the hotspot is back.
			if fx.s.ReserveJoin() != (c.wantState == SetupOn) {
				t.Errorf("ReserveJoin with the hotspot %s", c.wantState)
			}
		})
	}
}

// TestSetupReserveJoin: the page's joins one at a time, only while the
// hotspot is open.
func TestSetupReserveJoin(t *testing.T) {
	fx := newSetupFixture(t, setupConfig())
	if fx.s.ReserveJoin() {
		t.Error("a join reserved with the hotspot off")
	}
	fx.open()
	if !fx.s.ReserveJoin() || fx.s.ReserveJoin() {
		t.Error("not one join at a time")
	}
	fx.s.ReleaseJoin()
	if !fx.s.ReserveJoin() {
		t.Error("a released join cannot be reserved again")
	}
}

// TestSetupForget: a network is forgotten in wpa_supplicant, and in the
// config file when it is saved there.
func TestSetupForget(t *testing.T) {
	for _, c := range []struct {
		ssid      string
		wantSaves int
		wantSaved []string
	}{
		{"home", 1, []string{"work"}},
		{"elsewhere", 0, []string{"home", "work"}}, // joined, never saved
	} {
		t.Run(c.ssid, func(t *testing.T) {
			cfg := setupConfig()
			cfg.Networks = append(cfg.Networks, Network{SSID: "work", PSK: "password2"})
			fx := newSetupFixture(t, cfg)
			if err := fx.w.SetSaved(fx.ctx, cfg.Networks); err != nil {
				t.Fatal(err)
			}
			if c.ssid != "home" {
				fx.f.addBSS(5, c.ssid, -50, "wpa-psk")
				fx.f.script(joinOK)
				if _, err := fx.w.Connect(fx.ctx, Network{SSID: c.ssid, PSK: "password3"}, 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if err := fx.s.Forget(fx.ctx, fx.w, c.ssid); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range fx.saved() {
				names = append(names, n.SSID)
			}
			fx.mu.Lock()
			saves := fx.saves
			fx.mu.Unlock()
			if saves != c.wantSaves || !slices.Equal(names, c.wantSaved) {
				t.Errorf("%d saves, saved %v; want %d, %v", saves, names, c.wantSaves, c.wantSaved)
			}
			if err := fx.s.Forget(fx.ctx, fx.w, c.ssid); !errors.Is(err, ErrUnknownNetwork) {
				t.Errorf("forgotten twice: %v", err)
			}
		})
	}
}

// TestSetupGiveWay: a hotspot that setup_after opened gives way to a
// saved network in range (an operation of its own), and setup_after
// runs again; the next time it holds before it looks. One opened by
// hand never watches.
func TestSetupGiveWay(t *testing.T) {
	fx := newSetupFixture(t, setupConfig())
	fx.opened()
	fx.clock.Advance(time.Minute)
	if len(fx.radio.watches) != 1 || !slices.Equal(fx.s.Status(false).WatchesFor, []string{"home"}) {
		t.Fatalf("watches %v, status %+v", fx.radio.watches, fx.s.Status(false))
	}
	fx.radio.watches[0].found(BSS{SSID: "home", Signal: -50})
	if ops := fx.operations(); !slices.Equal(ops, []string{"wifi.setup.start", "wifi.setup.stop"}) {
		t.Errorf("operations %v", ops)
	}
	if st := fx.s.Status(false); st.State != SetupOff || !fx.radio.watches[0].closed {
		t.Errorf("after the give-way: %+v, watch closed %v", st, fx.radio.watches[0].closed)
	}
	if k := fx.kinds(); !slices.Equal(k, []string{"up", "give-way", "down"}) {
		t.Errorf("events %v", k)
	}
	// The network did not join: setup_after opens the hotspot again,
	// which holds a while before it looks.
	fx.clock.Advance(time.Minute)
	st := fx.s.Status(false)
	if st.State != SetupOn || len(fx.radio.watches) != 1 || st.GaveWay != 1 || st.HoldsUntil == nil ||
		!st.HoldsUntil.Equal(setupT0.Add(3*time.Minute)) {
		t.Errorf("after the second setup_after: %+v, %d watches", st, len(fx.radio.watches))
	}
	fx.clock.Advance(time.Minute)
	if len(fx.radio.watches) != 2 {
		t.Errorf("%d watches after the hold", len(fx.radio.watches))
	}
	// Closed by hand and opened by hand: no watch.
	if _, err := fx.s.Stop(fx.ctx); err != nil {
		t.Fatal(err)
	}
	fx.open()
	if st := fx.s.Status(false); len(fx.radio.watches) != 2 || st.WatchesFor != nil {
		t.Errorf("a hotspot opened by hand watches: %+v", st)
	}
}

// TestSetupClosing: the client going (shutdown, wpa_supplicant gone)
// takes the hotspot down.
func TestSetupClosing(t *testing.T) {
	fx := newSetupFixture(t, setupConfig())
	fx.open()
	fx.s.Closing()
	if _, downs := fx.radio.counts(); downs != 1 || fx.s.Status(false).State != SetupOff || fx.s.Active() {
		t.Errorf("%d downs, status %+v", downs, fx.s.Status(false))
	}
	if k := fx.kinds(); !slices.Equal(k, []string{"up", "down"}) {
		t.Errorf("events %v", k)
	}
}
