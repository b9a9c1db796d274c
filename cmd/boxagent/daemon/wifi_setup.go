package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/wifi"
)

// The setup hotspot: when no known network joins within [wifi]
// setup_after (or on POST /api/v1/wifi/setup/start), the board's
// wireless interface becomes an access point "boxagent-XXXX" with a WPA2
// password printed on the console; its clients get an address from an
// in-process DHCP server and every HTTP request to the hotspot's address
// is redirected to the setup page (wifi_setup_http.go). Choosing a
// network there is an ordinary wifi.connect operation: the AP stops (the
// chip cannot be AP and station at once), the box joins, and on failure
// the hotspot comes back and the page shows why.

// Setup states.
const (
	setupOff      = "off"
	setupStarting = "starting"
	setupOn       = "on"
	setupJoining  = "joining" // the AP is down while the box tries a network
)

// setupScanTimeout bounds the scan before the hotspot opens: the
// radio cannot scan once it is an AP.
const setupScanTimeout = 20 * time.Second

type wifiSetup struct {
	d   *wifiDomain
	log *slog.Logger
	api *localapi.Server

	mu       sync.Mutex
	ctx      context.Context // the domain's, for the timer's start
	state    string
	auto     bool
	since    time.Time
	creds    wifi.HotspotCredentials
	hotspot  *wifi.Hotspot // AP, address, DHCP, DNS and the page's listener
	scan     []wifi.BSS
	lastSSID string
	lastErr  error
	timer    *time.Timer
	joined   bool                // a network completed since the client opened
	pending  bool                // the page's network is being joined
	giveWay  *wifi.GiveWayPolicy // when the hotspot gives way to a saved network (wifi_giveway.go)
}

func newWiFiSetup(d *wifiDomain) *wifiSetup {
	s := &wifiSetup{d: d, log: d.log.With("part", "setup"), state: setupOff, ctx: context.Background()}
	s.giveWay = s.newGiveWayPolicy()
	return s
}

// credsPath is the state file holding the hotspot's password.
func (s *wifiSetup) credsPath() string {
	return filepath.Join(s.d.a.paths.StateDir(), "wifi-setup.json")
}

// status is the hotspot's state; the password only when withPassword.
func (s *wifiSetup) status(withPassword bool) wifi.SetupStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := wifi.SetupStatus{State: s.state, Auto: s.auto, LastSSID: s.lastSSID}
	if d := wifiConfig(s.d.a.config()).SetupAfter.Duration(); d > 0 {
		st.SetupAfter = d.String()
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
		if e := mapWiFiError(s.lastErr); e != nil {
			st.LastErrorCode = e.Code
		}
	}
	if s.state == setupOff {
		return st
	}
	st.SSID = s.creds.SSID
	st.Address = wifi.HotspotPrefix.Addr().String()
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

// active says whether the interface is (becoming) the access point: its
// state events are the AP's, not a station link to address.
func (s *wifiSetup) active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == setupStarting || s.state == setupOn
}

// opened is called when the Wi-Fi client is (re)opened: an AP network
// and a give-way watch left by a killed agent are removed, and the
// setup_after timer is armed unless the link is already up.
func (s *wifiSetup) opened(ctx context.Context, w *wifi.Client) {
	w.RemoveAPNetworks(ctx)
	s.clearStaleWatch(ctx, w.Interface())
	after := wifiConfig(s.d.a.config()).SetupAfter.Duration()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	if w.Status().State == wifi.StateCompleted {
		s.joined = true
		s.giveWay.Joined()
	}
	if after <= 0 || s.joined || s.state != setupOff || s.timer != nil {
		return
	}
	s.log.Info("the setup hotspot opens unless a known network joins first", "after", after)
	s.timer = time.AfterFunc(after, func() {
		s.mu.Lock()
		s.timer = nil
		fire := !s.joined && s.state == setupOff
		ctx := s.ctx
		s.mu.Unlock()
		if !fire || ctx.Err() != nil {
			return
		}
		s.log.Info("no known network joined: opening the setup hotspot", "after", after)
		op, err := s.api.Run(localapi.Spec{Kind: "wifi.setup.start", Summary: "open the Wi-Fi setup hotspot (no network joined within " + after.String() + ")"},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				st, err := s.start(ctx, true)
				return st, err
			})
		if err == nil && op.Error != nil {
			s.log.Warn("cannot open the setup hotspot", "err", op.Error.Message)
		}
	})
}

// onEvent learns from the link's events: a station link that completes
// disarms the timer.
func (s *wifiSetup) onEvent(e wifi.Event) {
	if e.Kind != "state" || e.State != wifi.StateCompleted {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == setupStarting || s.state == setupOn {
		return // the AP's own
	}
	s.joined = true
	s.giveWay.Joined()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// start opens the hotspot; it is a no-op when it is open.
func (s *wifiSetup) start(ctx context.Context, auto bool) (wifi.SetupStatus, error) {
	w, err := s.d.need()
	if err != nil {
		return wifi.SetupStatus{}, err
	}
	s.mu.Lock()
	if s.state != setupOff {
		s.mu.Unlock()
		return s.status(false), nil
	}
	s.state, s.auto = setupStarting, auto
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	// The list the page offers: the radio cannot scan once it is an AP.
	scan, err := w.Scan(ctx, setupScanTimeout)
	if err != nil {
		s.log.Warn("scan before the hotspot failed; the page offers the last list", "err", err)
		scan = w.BSSs()
	}
	scan = slices.DeleteFunc(scan, func(b wifi.BSS) bool { return b.SSID == "" })
	s.d.addr.Drop()
	err = s.up(ctx, w)
	s.mu.Lock()
	if err != nil {
		s.state = setupOff
	} else {
		s.scan = scan
		s.state, s.since = setupOn, time.Now()
	}
	s.mu.Unlock()
	if err == nil {
		s.giveWay.Opened(auto) // once on: a find gives way only to an open hotspot
		s.publishUp()
	}
	return s.status(false), err
}

// up brings up the hotspot (wifi.StartHotspot) with the setup page's
// listener; on any error what came up goes down again.
func (s *wifiSetup) up(ctx context.Context, w *wifi.Client) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("cannot open netlink: %w", err)
	}
	defer h.Close()
	start := time.Now()
	hs, err := wifi.StartHotspot(ctx, w, h, wifi.HotspotOptions{
		CredentialsFile: s.credsPath(), Logger: s.d.a.log, Serve: s.serve,
		OnLease: func(mac net.HardwareAddr, addr netip.Addr) {
			s.d.a.events.Publish("wifi.setup", map[string]string{"kind": "lease", "mac": mac.String(), "address": addr.String()})
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
		creds.SSID, creds.Password, wifi.HotspotPrefix.Addr()), "ssid", creds.SSID, "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// down takes the hotspot down: the give-way's watch, then the hotspot.
func (s *wifiSetup) down(ctx context.Context) error {
	s.mu.Lock()
	hs := s.hotspot
	s.hotspot = nil
	s.mu.Unlock()
	s.giveWay.Closed(ctx)
	var err error
	if hs != nil {
		h, nerr := netlink.NewHandle()
		if nerr == nil {
			defer h.Close()
			err = hs.Stop(ctx, h)
		} else {
			err = hs.Stop(ctx, nil)
		}
	}
	s.d.a.events.Publish("wifi.setup", map[string]string{"kind": "down"})
	return err
}

// stop closes the hotspot; the known networks are enabled again.
func (s *wifiSetup) stop(ctx context.Context) (wifi.SetupStatus, error) {
	s.mu.Lock()
	if s.state == setupOff {
		s.mu.Unlock()
		return s.status(false), nil
	}
	// Off before the AP goes: the join that follows is a station link
	// to address.
	s.state = setupOff
	s.mu.Unlock()
	err := s.down(ctx)
	return s.status(false), err
}

// connect joins n, from the API or the setup page: with the hotspot
// open it goes down first and comes back when the join fails, with the
// reason kept for the page. A joined network is saved in the config
// file.
func (s *wifiSetup) connect(ctx context.Context, c *wifi.Client, n wifi.Network) (wifi.Status, error) {
	s.mu.Lock()
	wasOn := s.state == setupOn
	s.pending = false
	if wasOn {
		s.state, s.lastSSID, s.lastErr = setupJoining, n.SSID, nil
	}
	s.mu.Unlock()
	if wasOn {
		if err := s.down(ctx); err != nil {
			s.log.Warn("the hotspot did not go down cleanly", "err", err)
		}
	}
	st, err := s.d.connectAndSave(ctx, c, n)
	if !wasOn {
		return st, err
	}
	if err == nil {
		s.mu.Lock()
		s.state, s.lastErr = setupOff, nil
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
		s.state = setupOff
		s.mu.Unlock()
		return st, fmt.Errorf("%w; and the setup hotspot could not open again: %v", err, uerr)
	}
	s.mu.Lock()
	s.state = setupOn
	auto := s.auto
	s.mu.Unlock()
	s.giveWay.Opened(auto)
	s.publishUp()
	return st, err
}

// publishUp tells the event stream the hotspot is open (the state says
// so already).
func (s *wifiSetup) publishUp() {
	st := s.status(false)
	s.d.a.events.Publish("wifi.setup", map[string]string{"kind": "up", "ssid": st.SSID, "last_error": st.LastError})
}

// closeAll takes the hotspot down at shutdown or when wpa_supplicant
// leaves (its AP went with it).
func (s *wifiSetup) closeAll() {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	on := s.state != setupOff
	s.mu.Unlock()
	if on {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.down(ctx)
		s.mu.Lock()
		s.state = setupOff
		s.mu.Unlock()
	}
}

// connectAndSave joins n and saves it in the config file's
// [[wifi.network]], keeping the priority it had there; the PSK goes to
// the file (0600) and wpa_supplicant, nowhere else.
func (d *wifiDomain) connectAndSave(ctx context.Context, c *wifi.Client, n wifi.Network) (wifi.Status, error) {
	if n.Priority == 0 {
		for _, o := range wifiConfig(d.a.config()).Networks {
			if o.SSID == n.SSID {
				n.Priority = o.Priority
			}
		}
	}
	st, err := c.Connect(ctx, n, wifiJoinTimeout)
	if err != nil {
		return st, err
	}
	if err := d.a.saveWiFiNetworks(func(nets []wifi.Network) []wifi.Network {
		if i := slices.IndexFunc(nets, func(o wifi.Network) bool { return o.SSID == n.SSID }); i >= 0 {
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

// forgetAndSave forgets ssid in wpa_supplicant and in the config file.
func (d *wifiDomain) forgetAndSave(ctx context.Context, c *wifi.Client, ssid string) error {
	if err := c.Forget(ctx, ssid); err != nil {
		return err
	}
	saved := slices.ContainsFunc(wifiConfig(d.a.config()).Networks, func(o wifi.Network) bool { return o.SSID == ssid })
	if !saved {
		return nil
	}
	return d.a.saveWiFiNetworks(func(nets []wifi.Network) []wifi.Network {
		return slices.DeleteFunc(nets, func(o wifi.Network) bool { return o.SSID == ssid })
	})
}

// saveWiFiNetworks writes the config file's networks and makes the new
// file the config in effect, as a reload would, without pushing it to
// wpa_supplicant again (the caller already has).
func (a *agent) saveWiFiNetworks(update func([]wifi.Network) []wifi.Network) error {
	cfg, err := config.SaveWiFiNetworks(a.cfgPath, update)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.cfg, a.isDefault, a.loaded = cfg, false, time.Now()
	a.settled()
	a.mu.Unlock()
	a.log.Info("Wi-Fi networks saved in the config file", "path", a.cfgPath, "networks", len(cfg.WiFi.Networks), "revision", cfg.Revision())
	a.events.Publish("config", a.configInfo())
	return nil
}

// registerSetup adds the hotspot's API calls.
func (s *wifiSetup) register(api *localapi.Server) {
	s.api = api
	api.Handle("GET /api/v1/wifi/setup", func(w http.ResponseWriter, r *http.Request) error {
		localapi.WriteJSON(w, http.StatusOK, s.status(overUnixSocket(r)))
		return nil
	})
	api.Handle("POST /api/v1/wifi/setup/start", func(w http.ResponseWriter, r *http.Request) error {
		if _, err := s.d.need(); err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.setup.start", Summary: "open the Wi-Fi setup hotspot"},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return s.start(ctx, false) })
	})
	api.Handle("POST /api/v1/wifi/setup/stop", func(w http.ResponseWriter, r *http.Request) error {
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.setup.stop", Summary: "close the Wi-Fi setup hotspot"},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return s.stop(ctx) })
	})
}

// overUnixSocket says whether r came over the unix socket, whose callers
// are root or the agent's group: they may see the hotspot's password.
func overUnixSocket(r *http.Request) bool {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return a != nil && a.Network() == "unix"
}
