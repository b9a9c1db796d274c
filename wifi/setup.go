package wifi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/boxagent/boxagent/internal/clock"
)

// The setup hotspot's state machine: when no known network joins
// within [wifi] setup_after (or when asked), the box's wireless
// interface becomes an access point "boxagent-XXXX" with a WPA2
// password printed on the console (StartHotspot: its clients get an
// address from an in-process DHCP server, every name resolves to the
// box, and the caller's listener serves the setup page there).
// Choosing a network on that page is an ordinary Connect: the AP stops
// (the chip cannot be AP and station at once), the box joins, and on
// failure the hotspot comes back and its status says why. A hotspot
// that opened by itself gives way to a saved network that comes back
// in range (GiveWayPolicy, setup_giveway.go).

// Setup states: SetupStatus.State.
const (
	SetupOff      = "off"
	SetupStarting = "starting"
	SetupOn       = "on"
	SetupJoining  = "joining" // the AP is down while the box tries a network
)

// Timeouts of the setup's own calls.
const (
	// setupScanTimeout bounds the scan before the hotspot opens: the
	// radio cannot scan once it is an AP.
	setupScanTimeout = 20 * time.Second
	// setupJoinTimeout bounds a join: a scan first (4 s for a full
	// scan on the virtual board), then the authentication.
	setupJoinTimeout = 30 * time.Second
)

// SetupOptions connect a Setup to the agent around it: the config in
// effect and its editor, the operations journal, the event stream.
// Config, Client, Operate and Save are required.
type SetupOptions struct {
	// Logger is the agent's; the setup logs as component "wifi", part
	// "setup".
	Logger *slog.Logger
	// Clock runs the setup_after timer and the give-way's hold; default
	// clock.System.
	Clock clock.Clock
	// CredentialsFile keeps the hotspot's name and password
	// (LoadHotspotCredentials).
	CredentialsFile string
	// Config is the [wifi] section in effect: setup_after and the saved
	// networks.
	Config func() Config
	// Client is the station's client, or the error that says why there
	// is none (Start returns it).
	Client func() (*Client, error)
	// Station is the station link's addressing, dropped when the link
	// becomes the AP; nil, or a nil one, when there is none.
	Station func() *StationDHCP
	// Operate runs run as an operation of the agent's own (journalled,
	// origin auto) and returns the error it ended with: the setup_after
	// timer's start and a give-way's stop.
	Operate func(kind, summary string, run func(ctx context.Context) (any, error)) error
	// Publish sends a "wifi.setup" event with data: the hotspot up or
	// down, a lease, a give-way.
	Publish func(data map[string]string)
	// Save changes the saved networks in the config file and makes them
	// the ones in effect (without pushing them to wpa_supplicant again).
	Save func(update func([]Network) []Network) error
	// ErrorCode is the API's code for an error, shown beside the last
	// join's error (SetupStatus.LastErrorCode); "" for none.
	ErrorCode func(error) string
	// Serve opens the setup page's listener on the hotspot's address
	// (HotspotOptions.Serve).
	Serve func(addr netip.Addr) (io.Closer, error)
}

// Setup is the setup hotspot's state machine: off, starting, on, and
// joining while a network chosen on its page is tried. The caller
// tells it when the Wi-Fi client opens and closes (Opened, Closing)
// and passes it the client's events (OnEvent).
type Setup struct {
	o       SetupOptions
	log     *slog.Logger
	radio   setupRadio
	giveWay *GiveWayPolicy // when the hotspot gives way to a saved network

	mu       sync.Mutex
	ctx      context.Context // the caller's, from Opened: the timer's start
	state    string
	auto     bool
	since    time.Time
	creds    HotspotCredentials
	hotspot  setupHotspot // AP, address, DHCP, DNS and the page's listener
	scan     []BSS
	lastSSID string
	lastErr  error
	timer    clock.Timer
	joined   bool // a network completed since the client opened
	pending  bool // the page's network is being joined
}

// NewSetup makes the setup of a box whose hotspot is off.
func NewSetup(o SetupOptions) *Setup {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Publish == nil {
		o.Publish = func(map[string]string) {}
	}
	if o.ErrorCode == nil {
		o.ErrorCode = func(error) string { return "" }
	}
	s := &Setup{o: o, log: o.Logger.With("component", "wifi", "part", "setup"), radio: boxRadio{},
		state: SetupOff, ctx: context.Background()}
	s.giveWay = s.newGiveWayPolicy()
	return s
}

// Status is the hotspot's state; its password only when withPassword.
func (s *Setup) Status(withPassword bool) SetupStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SetupStatus{State: s.state, Auto: s.auto, LastSSID: s.lastSSID}
	if d := s.o.Config().SetupAfter.Duration(); d > 0 {
		st.SetupAfter = d.String()
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
		st.LastErrorCode = s.o.ErrorCode(s.lastErr)
	}
	if s.state == SetupOff {
		return st
	}
	st.SSID = s.creds.SSID
	st.Address = HotspotPrefix.Addr().String()
	st.URL = "http://" + st.Address + "/"
	since := s.since.UTC()
	st.Since = &since
	if s.hotspot != nil {
		st.Clients = s.hotspot.Clients()
	}
	s.giveWay.Report(&st)
	if withPassword {
		st.Password = s.creds.Password
	}
	return st
}

// Active says whether the interface is (becoming) the access point: its
// state events are the AP's, not a station link to address.
func (s *Setup) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == SetupStarting || s.state == SetupOn
}

// Networks are what the setup page offers: the networks the scan before
// the hotspot saw, one per SSID (its strongest BSS), strongest first,
// without hidden ones.
func (s *Setup) Networks() []BSS {
	s.mu.Lock()
	sorted := slices.Clone(s.scan)
	s.mu.Unlock()
	slices.SortStableFunc(sorted, func(a, b BSS) int { return b.Signal - a.Signal })
	list := []BSS{}
	seen := map[string]bool{}
	for _, b := range sorted {
		if b.SSID == "" || seen[b.SSID] {
			continue
		}
		seen[b.SSID] = true
		list = append(list, b)
	}
	return list
}

// Opened is called when the Wi-Fi client is (re)opened: an AP network
// and a give-way watch left by a killed agent are removed, and the
// setup_after timer is armed unless the link is already up. ctx is the
// caller's life: the timer starts nothing once it ends.
func (s *Setup) Opened(ctx context.Context, w *Client) {
	w.RemoveAPNetworks(ctx)
	s.clearStaleWatch(ctx, w)
	after := s.o.Config().SetupAfter.Duration()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	if w.Status().State == StateCompleted {
		s.joined = true
		s.giveWay.Joined()
	}
	if after <= 0 || s.joined || s.state != SetupOff || s.timer != nil {
		return
	}
	s.log.Info("the setup hotspot opens unless a known network joins first", "after", after)
	s.timer = s.o.Clock.AfterFunc(after, func() {
		s.mu.Lock()
		s.timer = nil
		fire := !s.joined && s.state == SetupOff
		ctx := s.ctx
		s.mu.Unlock()
		if !fire || ctx.Err() != nil {
			return
		}
		s.log.Info("no known network joined: opening the setup hotspot", "after", after)
		err := s.o.Operate("wifi.setup.start", "open the Wi-Fi setup hotspot (no network joined within "+after.String()+")",
			func(ctx context.Context) (any, error) {
				st, err := s.Start(ctx, true)
				return st, err
			})
		if err != nil {
			s.log.Warn("cannot open the setup hotspot", "err", err)
		}
	})
}

// OnEvent learns from the link's events: a station link that completes
// disarms the timer.
func (s *Setup) OnEvent(e Event) {
	if e.Kind != "state" || e.State != StateCompleted {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == SetupStarting || s.state == SetupOn {
		return // the AP's own
	}
	s.joined = true
	s.giveWay.Joined()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// SavedChanged follows a change of the saved networks in effect: a
// hotspot that gives way watches for the new list.
func (s *Setup) SavedChanged() { s.giveWay.Rewatch() }

// Start opens the hotspot, auto when setup_after opened it; it is a
// no-op when the hotspot is open. It scans first, for the page's list:
// the radio cannot scan once it is an AP.
func (s *Setup) Start(ctx context.Context, auto bool) (SetupStatus, error) {
	w, err := s.o.Client()
	if err != nil {
		return SetupStatus{}, err
	}
	s.mu.Lock()
	if s.state != SetupOff {
		s.mu.Unlock()
		return s.Status(false), nil
	}
	s.state, s.auto = SetupStarting, auto
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	scan, err := w.Scan(ctx, setupScanTimeout)
	if err != nil {
		s.log.Warn("scan before the hotspot failed; the page offers the last list", "err", err)
		scan = w.BSSs()
	}
	scan = slices.DeleteFunc(scan, func(b BSS) bool { return b.SSID == "" })
	if s.o.Station != nil {
		if st := s.o.Station(); st != nil {
			st.Drop()
		}
	}
	err = s.up(ctx, w)
	s.mu.Lock()
	if err != nil {
		s.state = SetupOff
	} else {
		s.scan = scan
		s.state, s.since = SetupOn, s.o.Clock.Now()
	}
	s.mu.Unlock()
	if err == nil {
		s.giveWay.Opened(auto) // once on: a find gives way only to an open hotspot
		s.publishUp()
	}
	return s.Status(false), err
}

// up brings up the hotspot with the setup page's listener; on any
// error what came up goes down again.
func (s *Setup) up(ctx context.Context, w *Client) error {
	start := time.Now()
	hs, err := s.radio.up(ctx, w, HotspotOptions{
		CredentialsFile: s.o.CredentialsFile, Logger: s.o.Logger, Serve: s.o.Serve,
		OnLease: func(mac net.HardwareAddr, addr netip.Addr) {
			s.o.Publish(map[string]string{"kind": "lease", "mac": mac.String(), "address": addr.String()})
		},
	})
	if err != nil {
		return err
	}
	creds := hs.Credentials()
	s.mu.Lock()
	s.creds, s.hotspot = creds, hs
	s.mu.Unlock()
	// The one place the password is shown: the console (the service's
	// log), and the CLI of whoever started it over the unix socket.
	s.log.Warn(fmt.Sprintf("Wi-Fi setup hotspot is up: join %q with password %q, then open http://%s/",
		creds.SSID, creds.Password, HotspotPrefix.Addr()), "ssid", creds.SSID, "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// down takes the hotspot down: the give-way's watch, then the hotspot.
func (s *Setup) down(ctx context.Context) error {
	s.mu.Lock()
	hs := s.hotspot
	s.hotspot = nil
	s.mu.Unlock()
	s.giveWay.Closed(ctx)
	var err error
	if hs != nil {
		err = hs.close(ctx)
	}
	s.o.Publish(map[string]string{"kind": "down"})
	return err
}

// Stop closes the hotspot; the known networks are enabled again.
func (s *Setup) Stop(ctx context.Context) (SetupStatus, error) {
	s.mu.Lock()
	if s.state == SetupOff {
		s.mu.Unlock()
		return s.Status(false), nil
	}
	// Off before the AP goes: the join that follows is a station link
	// to address.
	s.state = SetupOff
	s.mu.Unlock()
	err := s.down(ctx)
	return s.Status(false), err
}

// ReserveJoin takes the one join the setup page may ask for at a time:
// false when the hotspot is not open or a network from the page is
// being joined. Connect ends the reservation; ReleaseJoin gives it back
// when the join does not start.
func (s *Setup) ReserveJoin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != SetupOn || s.pending {
		return false
	}
	s.pending = true
	return true
}

// ReleaseJoin gives back a ReserveJoin whose join did not start.
func (s *Setup) ReleaseJoin() {
	s.mu.Lock()
	s.pending = false
	s.mu.Unlock()
}

// Connect joins n on c, from the API or the setup page, and saves it
// (Save: the config file's [[wifi.network]], keeping the priority it
// had there; the PSK goes to the file and wpa_supplicant, nowhere
// else). With the hotspot open it goes down first and comes back when
// the join fails, with the reason kept for the page.
func (s *Setup) Connect(ctx context.Context, c *Client, n Network) (Status, error) {
	s.mu.Lock()
	wasOn := s.state == SetupOn
	s.pending = false
	if wasOn {
		s.state, s.lastSSID, s.lastErr = SetupJoining, n.SSID, nil
	}
	s.mu.Unlock()
	if wasOn {
		if err := s.down(ctx); err != nil {
			s.log.Warn("the hotspot did not go down cleanly", "err", err)
		}
	}
	st, err := s.join(ctx, c, n)
	if !wasOn {
		return st, err
	}
	if err == nil {
		s.mu.Lock()
		s.state, s.lastErr = SetupOff, nil
		s.mu.Unlock()
		s.log.Info("joined from the setup hotspot; it stays closed", "ssid", n.SSID)
		return st, nil
	}
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	s.log.Warn("the network chosen on the setup page did not join: the hotspot opens again", "ssid", n.SSID, "err", err)
	if uerr := s.up(context.WithoutCancel(ctx), c); uerr != nil {
		s.mu.Lock()
		s.state = SetupOff
		s.mu.Unlock()
		return st, fmt.Errorf("%w; and the setup hotspot could not open again: %v", err, uerr)
	}
	s.mu.Lock()
	s.state = SetupOn
	auto := s.auto
	s.mu.Unlock()
	s.giveWay.Opened(auto)
	s.publishUp()
	return st, err
}

// join joins n and saves it, with the priority it had in the config
// file unless n sets one.
func (s *Setup) join(ctx context.Context, c *Client, n Network) (Status, error) {
	if n.Priority == 0 {
		for _, o := range s.o.Config().Networks {
			if o.SSID == n.SSID {
				n.Priority = o.Priority
			}
		}
	}
	st, err := c.Connect(ctx, n, setupJoinTimeout)
	if err != nil {
		return st, err
	}
	if err := s.o.Save(func(nets []Network) []Network {
		if i := slices.IndexFunc(nets, func(o Network) bool { return o.SSID == n.SSID }); i >= 0 {
			nets[i] = n
			return nets
		}
		return append(nets, n)
	}); err != nil {
		return st, fmt.Errorf("joined %q but cannot save it in the config file: %w", n.SSID, err)
	}
	c.MarkSaved(n)
	return st, nil
}

// Forget forgets ssid on c (wpa_supplicant) and in the config file.
func (s *Setup) Forget(ctx context.Context, c *Client, ssid string) error {
	if err := c.Forget(ctx, ssid); err != nil {
		return err
	}
	if !slices.ContainsFunc(s.o.Config().Networks, func(o Network) bool { return o.SSID == ssid }) {
		return nil
	}
	return s.o.Save(func(nets []Network) []Network {
		return slices.DeleteFunc(nets, func(o Network) bool { return o.SSID == ssid })
	})
}

// publishUp tells the event stream the hotspot is open (the state says
// so already).
func (s *Setup) publishUp() {
	st := s.Status(false)
	s.o.Publish(map[string]string{"kind": "up", "ssid": st.SSID, "last_error": st.LastError})
}

// Closing is called before the Wi-Fi client closes (shutdown, or
// wpa_supplicant left and its AP went with it): the timer stops and the
// hotspot goes down.
func (s *Setup) Closing() {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	on := s.state != SetupOff
	s.mu.Unlock()
	if on {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.down(ctx)
		s.mu.Lock()
		s.state = SetupOff
		s.mu.Unlock()
	}
}
