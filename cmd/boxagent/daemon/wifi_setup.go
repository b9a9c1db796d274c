package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

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

// Timeouts of the hotspot's steps.
const (
	setupAPTimeout   = 20 * time.Second
	setupScanTimeout = 20 * time.Second
)

// setupCredentials are kept in a root-only state file, so the password
// printed once stays valid across restarts (a label or a note taken at
// the console keeps working).
type setupCredentials struct {
	SSID     string `json:"ssid"`
	Password string `json:"password"`
}

type wifiSetup struct {
	d   *wifiDomain
	log *slog.Logger
	api *localapi.Server

	mu       sync.Mutex
	ctx      context.Context // the domain's, for the timer's start
	state    string
	auto     bool
	since    time.Time
	creds    setupCredentials
	run      *wifi.APRun
	dhcp     *wifi.HotspotDHCP
	dns      *wifi.HotspotDNS
	web      *http.Server
	scan     []wifi.BSS
	lastSSID string
	lastErr  error
	timer    *time.Timer
	joined   bool          // a network completed since the client opened
	pending  bool          // the page's network is being joined
	watch    *wifi.GiveWay // the saved networks watched for (wifi_giveway.go)
	watchNL  *netlink.Handle
	gaveWay  int         // give-ways in a row that did not end in a join
	hold     *time.Timer // the watch's start after a hold (watchAfterHold)
	holdEnd  time.Time
}

func newWiFiSetup(d *wifiDomain) *wifiSetup {
	return &wifiSetup{d: d, log: d.log.With("part", "setup"), state: setupOff, ctx: context.Background()}
}

// credsPath is the state file holding the hotspot's password.
func (s *wifiSetup) credsPath() string {
	return filepath.Join(s.d.a.paths.StateDir(), "wifi-setup.json")
}

// credentials reads the hotspot's name and password, making and saving
// them the first time (or when the board's name changed).
func (s *wifiSetup) credentials(ssid string) (setupCredentials, error) {
	var c setupCredentials
	if b, err := readFileLimited(s.credsPath()); err == nil && json.Unmarshal(b, &c) == nil &&
		c.SSID == ssid && wifi.PSKProblem(c.Password) == "" && len(c.Password) >= 10 {
		return c, nil
	}
	pw, err := wifi.HotspotPassword()
	if err != nil {
		return c, err
	}
	c = setupCredentials{SSID: ssid, Password: pw}
	b, _ := json.Marshal(c)
	if err := config.WriteFileAtomic(s.credsPath(), append(b, '\n'), 0o600); err != nil {
		return c, fmt.Errorf("cannot keep the hotspot password: %w", err)
	}
	return c, nil
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
	if s.dhcp != nil {
		st.Clients = len(s.dhcp.Leases())
	}
	if s.watch != nil {
		st.WatchesFor = s.watch.SSIDs()
	}
	if s.hold != nil {
		end := s.holdEnd.UTC()
		st.HoldsUntil, st.GaveWay = &end, s.gaveWay
	}
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
		s.joined, s.gaveWay = true, 0
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
	s.joined, s.gaveWay = true, 0
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
	s.d.dropLease()
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
		s.watchAfterHold(w.Interface()) // once on: a find gives way only to an open hotspot
		s.publishUp()
	}
	return s.status(false), err
}

// up brings up the AP, its address, DHCP and the page; on any error it
// takes down what it brought up.
func (s *wifiSetup) up(ctx context.Context, w *wifi.Client) (err error) {
	iface := w.Interface()
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("cannot open netlink: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("cannot find %s: %w", iface, err)
	}
	creds, err := s.credentials(wifi.HotspotSSID(link.Attrs().HardwareAddr))
	if err != nil {
		return err
	}
	start := time.Now()
	run, err := w.StartAP(ctx, wifi.AP{SSID: creds.SSID, PSK: creds.Password}, setupAPTimeout)
	if err != nil {
		return err
	}
	var dhcp *wifi.HotspotDHCP
	var dns *wifi.HotspotDNS
	var srv *http.Server
	defer func() {
		if err == nil {
			return
		}
		if srv != nil {
			srv.Close()
		}
		if dns != nil {
			dns.Close()
		}
		if dhcp != nil {
			dhcp.Close()
		}
		wifi.ClearHotspotAddress(h, iface, wifi.HotspotPrefix)
		run.Stop(context.WithoutCancel(ctx))
	}()
	if err = wifi.SetHotspotAddress(h, iface, wifi.HotspotPrefix); err != nil {
		return err
	}
	dhcp, err = wifi.StartHotspotDHCP(netns.None(), wifi.HotspotDHCPConfig{
		Interface: iface, Server: wifi.HotspotPrefix, DNS: true, Logger: s.d.a.log,
		OnLease: func(mac net.HardwareAddr, addr netip.Addr) {
			s.d.a.events.Publish("wifi.setup", map[string]string{"kind": "lease", "mac": mac.String(), "address": addr.String()})
		},
	})
	if err != nil {
		return err
	}
	// Every name resolves to the box, so phones' captive-portal probes
	// reach the page and they show it by themselves.
	if dns, err = wifi.StartHotspotDNS(wifi.HotspotPrefix.Addr(), s.d.a.log); err != nil {
		return err
	}
	srv, err = s.serve(wifi.HotspotPrefix.Addr().String())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.creds, s.run, s.dhcp, s.dns, s.web = creds, run, dhcp, dns, srv
	s.mu.Unlock()
	// The one place the password is shown: the console (the service's
	// log), and the CLI of whoever started it over the unix socket.
	s.log.Warn(fmt.Sprintf("Wi-Fi setup hotspot is up: join %q with password %q, then open http://%s/",
		creds.SSID, creds.Password, wifi.HotspotPrefix.Addr()), "ssid", creds.SSID, "after", time.Since(start).Round(time.Millisecond))
	return nil
}

// down takes the hotspot down: page, DHCP, address, AP.
func (s *wifiSetup) down(ctx context.Context) error {
	s.mu.Lock()
	run, dhcp, dns, srv := s.run, s.dhcp, s.dns, s.web
	s.run, s.dhcp, s.dns, s.web = nil, nil, nil, nil
	if s.hold != nil {
		s.hold.Stop()
		s.hold = nil
	}
	s.mu.Unlock()
	s.stopWatch(ctx)
	if srv != nil {
		srv.Close()
	}
	if dns != nil {
		dns.Close()
	}
	if dhcp != nil {
		dhcp.Close()
	}
	var errs []error
	if h, err := netlink.NewHandle(); err == nil {
		errs = append(errs, wifi.ClearHotspotAddress(h, s.d.iface, wifi.HotspotPrefix))
		h.Close()
	}
	if run != nil {
		errs = append(errs, run.Stop(ctx))
	}
	s.d.a.events.Publish("wifi.setup", map[string]string{"kind": "down"})
	return errors.Join(errs...)
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
	s.mu.Unlock()
	s.watchAfterHold(c.Interface())
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

// dropLease stops the link's DHCP client and takes its address off the
// link: the interface is about to change networks or become an AP.
func (d *wifiDomain) dropLease() {
	d.dhcpMu.Lock()
	defer d.dhcpMu.Unlock()
	d.dropLeaseLocked()
}

// dropLeaseLocked is dropLease with dhcpMu held.
func (d *wifiDomain) dropLeaseLocked() {
	if d.dhcp == nil {
		return
	}
	old, stop := d.dhcp, d.dhcpStop
	stop()
	d.dhcp = nil
	l := old.Status().Lease
	if l == nil {
		return
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return
	}
	defer h.Close()
	if link, err := h.LinkByName(d.iface); err == nil {
		if addr, _ := netlink.ParseAddr(l.Address.String()); addr != nil {
			h.AddrDel(link, addr)
		}
	}
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

// readFileLimited reads a small state file.
func readFileLimited(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 4096 {
		return nil, errors.New("state file too large")
	}
	return b, err
}
