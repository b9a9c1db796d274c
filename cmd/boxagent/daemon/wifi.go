package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// wifiScanTimeout bounds a scan asked for over the API.
const wifiScanTimeout = 30 * time.Second

// wifiDomain is the agent's Wi-Fi: the board's wireless interface driven
// through wpa_supplicant on the system bus. It follows wpa_supplicant
// coming and going (NameOwnerChanged) and publishes "wifi" events.
type wifiDomain struct {
	a   *agent
	log *slog.Logger

	mu     sync.Mutex
	conn   *dbus.Conn
	wifi   *wifi.Client
	iface  string
	health apitype.Subsystem
	sig    chan *dbus.Signal
	done   chan struct{} // closed when follow ends; nil if it never ran

	// addr addresses the link (wifi.StationDHCP), made by Start once
	// the interface is known; nil before.
	addr *wifi.StationDHCP
	// dns is the agent's one resolv.conf, shared with the wired uplinks
	// (buildDomains): the lease's servers and search domains go there at
	// the Wi-Fi route metric. nil writes nothing.
	dns *network.ResolvConf

	// setup is the setup hotspot's state machine; its page and API
	// calls are wifi_setup_http.go's.
	setup *wifi.Setup
}

func newWiFiDomain(a *agent) *wifiDomain {
	d := &wifiDomain{a: a, log: a.log.With("component", "wifi"),
		health: apitype.Subsystem{Name: "wifi", State: apitype.StateAbsent, Detail: "not started"}}
	d.setup = wifi.NewSetup(wifi.SetupOptions{
		Logger:          a.log,
		CredentialsFile: filepath.Join(a.paths.StateDir(), "wifi-setup.json"),
		Config:          func() wifi.Config { return wifiConfig(a.config()) },
		Client:          d.need,
		Station: func() *wifi.StationDHCP {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.addr
		},
		Operate: a.runAuto,
		Publish: func(data map[string]string) { a.events.Publish("wifi.setup", data) },
		Save:    a.saveWiFiNetworks,
		ErrorCode: func(err error) string {
			if e := mapWiFiError(err); e != nil {
				return e.Code
			}
			return ""
		},
		Serve: d.serveSetupPage,
	})
	return d
}

func (d *wifiDomain) Name() string { return "wifi" }

func (d *wifiDomain) setHealth(state, detail string) {
	d.mu.Lock()
	d.health = apitype.Subsystem{Name: "wifi", State: state, Detail: detail}
	d.mu.Unlock()
	d.a.statusChanged()
}

// Health is absent without a wireless interface or wpa_supplicant, else
// ok with the link's state.
func (d *wifiDomain) Health() apitype.Subsystem {
	d.mu.Lock()
	w, h := d.wifi, d.health
	d.mu.Unlock()
	if w == nil {
		return h
	}
	st := w.Status()
	detail := st.Interface + " " + st.State
	if st.SSID != "" {
		detail += fmt.Sprintf(" on %q (%d dBm)", st.SSID, st.Signal)
	}
	if a := d.addr.Address(); a != "" {
		detail += ", " + a
	}
	if st.State == wifi.StateAbsent {
		return apitype.Subsystem{Name: "wifi", State: apitype.StateAbsent, Detail: "wpa_supplicant dropped " + st.Interface}
	}
	return apitype.Subsystem{Name: "wifi", State: apitype.StateOK, Detail: detail}
}

// wifiInterface picks the wireless interface: the configured one, else
// the first link with a wireless/ folder in sysfs.
func wifiInterface(p paths.Paths, configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(filepath.Join(p.Sys(), "class/net", configured, "wireless")); err != nil {
			return "", fmt.Errorf("wifi.interface %s is not a wireless interface here", configured)
		}
		return configured, nil
	}
	links, _ := filepath.Glob(filepath.Join(p.Sys(), "class/net/*/wireless"))
	if len(links) == 0 {
		return "", errors.New("no wireless interface")
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = filepath.Base(filepath.Dir(l))
	}
	slices.Sort(names)
	return names[0], nil
}

// Start finds the interface, connects to the system bus and follows
// wpa_supplicant: the client opens when it is on the bus, now or later.
func (d *wifiDomain) Start(ctx context.Context) error {
	cfg := wifiConfig(d.a.config())
	iface, err := wifiInterface(d.a.paths, cfg.Interface)
	if err != nil {
		d.setHealth(apitype.StateAbsent, err.Error())
		return nil
	}
	conn, err := dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()), dbus.WithContext(ctx))
	if err != nil {
		d.setHealth(apitype.StateFailed, "cannot connect to the system bus: "+err.Error())
		return fmt.Errorf("cannot connect to the system bus: %w", err)
	}
	addr := wifi.NewStationDHCP(wifi.StationDHCPOptions{
		Link: iface, DNS: d.dns, Logger: d.log,
		Metric:  func() uint32 { return wifiConfig(d.a.config()).Metric() },
		OnEvent: func(ev network.Event) { d.a.events.Publish("wifi.dhcp", ev) },
	})
	d.mu.Lock()
	d.conn, d.iface, d.addr = conn, iface, addr
	d.sig = make(chan *dbus.Signal, 16)
	d.mu.Unlock()
	conn.Signal(d.sig)
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, wifi.SupplicantName)); err != nil {
		d.setHealth(apitype.StateFailed, "cannot follow wpa_supplicant on the bus: "+err.Error())
		return err
	}
	d.open(ctx)
	d.mu.Lock()
	d.done = make(chan struct{})
	d.mu.Unlock()
	go d.follow(ctx)
	return nil
}

// follow opens the client when wpa_supplicant arrives on the bus and
// drops it when it leaves.
func (d *wifiDomain) follow(ctx context.Context) {
	defer close(d.done)
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-d.sig:
			if !ok {
				return
			}
			if s.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(s.Body) != 3 || s.Body[0] != wifi.SupplicantName {
				continue
			}
			if owner, _ := s.Body[2].(string); owner != "" {
				d.log.Info("wpa_supplicant is on the bus")
				d.open(ctx)
			} else {
				d.log.Warn("wpa_supplicant left the bus")
				d.closeClient()
				d.setHealth(apitype.StateAbsent, "wpa_supplicant left the system bus")
			}
		}
	}
}

func (d *wifiDomain) open(ctx context.Context) {
	d.mu.Lock()
	conn, iface, have := d.conn, d.iface, d.wifi != nil
	d.mu.Unlock()
	if have {
		d.closeClient()
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := wifi.Open(octx, conn, wifi.Options{
		Interface: iface, Logger: d.a.log, Rejoin: true,
		OnEvent:  func(e wifi.Event) { d.onEvent(ctx, e) },
		OnChange: d.a.statusChanged, // its line shows the signal, which comes with no event
	})
	switch {
	case errors.Is(err, wifi.ErrNoSupplicant):
		d.setHealth(apitype.StateAbsent, "wpa_supplicant is not on the system bus (it needs -u)")
		return
	case err != nil:
		d.setHealth(apitype.StateFailed, err.Error())
		d.log.Warn("cannot open the Wi-Fi interface", "err", err)
		return
	}
	d.mu.Lock()
	d.wifi = w
	d.mu.Unlock()
	d.a.statusChanged()
	cfg := wifiConfig(d.a.config())
	if err := w.SetCountry(octx, cfg.Country); err != nil {
		d.log.Warn("cannot set the Wi-Fi country", "err", err)
	}
	saved := cfg.Networks
	if err := w.SetSaved(octx, saved); err != nil {
		d.log.Warn("cannot push the saved networks", "err", err)
	}
	d.setup.Opened(ctx, w)
	d.log.Info("Wi-Fi ready", "interface", iface, "saved", len(saved), "state", w.Status().State)
}

// onEvent publishes a Wi-Fi event and keeps the link addressed
// (wifi.StationDHCP): a completed link gets (or renews) a DHCP lease.
func (d *wifiDomain) onEvent(ctx context.Context, e wifi.Event) {
	d.a.events.Publish("wifi", e)
	d.setup.OnEvent(e)
	if e.Kind == "state" {
		d.addr.State(e.State)
	}
	// The AP's own completed state is no station link to address.
	if e.Kind == "state" && e.State == wifi.StateCompleted && !d.setup.Active() {
		go d.addr.Join(ctx, e.SSID)
	}
}

func (d *wifiDomain) closeClient() {
	d.setup.Closing()
	d.mu.Lock()
	w := d.wifi
	d.wifi = nil
	d.mu.Unlock()
	d.a.statusChanged()
	if w != nil {
		w.Close()
	}
}

func (d *wifiDomain) Stop() {
	d.closeClient()
	d.mu.Lock()
	conn, done := d.conn, d.done
	d.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if done != nil {
		<-done
	}
}

// Reconfigure pushes changed saved networks; a new interface waits for a
// restart.
func (d *wifiDomain) Reconfigure(ctx context.Context, old, cfg *config.Config) ([]string, error) {
	var notes []string
	ow, nw := wifiConfig(old), wifiConfig(cfg)
	if ow.Interface != nw.Interface {
		notes = append(notes, "wifi.interface changed: takes effect when the agent restarts")
	}
	if ow.SetupAfter.Duration() != nw.SetupAfter.Duration() {
		notes = append(notes, "wifi.setup_after changed: takes effect when the agent restarts")
	}
	if ow.Metric() != nw.Metric() {
		notes = append(notes, "wifi.route_metric changed: takes effect with the next Wi-Fi network joined")
	}
	w := d.client()
	if ow.Country != nw.Country && nw.Country != "" && w != nil {
		if err := w.SetCountry(ctx, nw.Country); err != nil {
			return notes, err
		}
		notes = append(notes, "wifi: country "+string(nw.Country)+" set")
	} else if ow.Country != nw.Country && nw.Country == "" {
		notes = append(notes, "wifi.country removed: the kernel keeps the last country until the agent or wpa_supplicant restarts")
	}
	if reflect.DeepEqual(ow.Networks, nw.Networks) {
		return notes, nil
	}
	if w == nil {
		return append(notes, "wifi: saved networks take effect once wpa_supplicant and the interface are there"), nil
	}
	if err := w.SetSaved(ctx, nw.Networks); err != nil {
		return notes, err
	}
	d.setup.SavedChanged()
	return append(notes, fmt.Sprintf("wifi: %d saved networks pushed to wpa_supplicant", len(nw.Networks))), nil
}

// wifiConfig is the [wifi] table in effect; none is the zero one.
func wifiConfig(c *config.Config) wifi.Config {
	if c == nil || c.WiFi == nil {
		return wifi.Config{}
	}
	return *c.WiFi
}

func (d *wifiDomain) client() *wifi.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wifi
}

// need returns the client or the API's answer when there is none.
func (d *wifiDomain) need() (*wifi.Client, error) {
	if w := d.client(); w != nil {
		return w, nil
	}
	h := d.Health()
	return nil, localapi.Errorf(http.StatusServiceUnavailable, "wifi.absent", "Wi-Fi is not available: "+h.Detail,
		"boxagent doctor says why (wpa_supplicant must run with -u: systemctl enable --now wpa_supplicant)")
}

// WiFiConnectRecord is what the journal keeps of a connect request: the
// PSK only as a fingerprint.
type WiFiConnectRecord struct {
	SSID     string `json:"ssid"`
	PSK      string `json:"psk,omitempty"`
	Security string `json:"security,omitempty"`
	Hidden   bool   `json:"hidden,omitempty"`
}

func (d *wifiDomain) Register(api *localapi.Server) {
	d.registerSetup(api)
	api.Handle("GET /api/v1/wifi", func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.need()
		if err != nil {
			return err
		}
		st := c.Status()
		st.Address = d.addr.Address()
		st.CountryConfigured = string(wifiConfig(d.a.config()).Country)
		if h, err := netlink.NewHandle(); err == nil {
			st.Country, _ = wifi.RegDomain(h)
			h.Close()
		}
		if st.State == wifi.StateCompleted {
			if sig, err := c.SignalPoll(r.Context()); err == nil {
				st.Link = &sig
			}
		}
		localapi.WriteJSON(w, http.StatusOK, apitype.WiFiStatus{Status: st, Setup: d.setup.Status(false)})
		return nil
	})
	api.Handle("POST /api/v1/wifi/scan", func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.need()
		if err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.scan", Summary: "scan for Wi-Fi networks on " + c.Interface()},
			func(ctx context.Context, progress localapi.ProgressFunc) (any, error) {
				progress("scanning on "+c.Interface(), 0, 0)
				bss, err := c.Scan(ctx, wifiScanTimeout)
				if err != nil {
					return nil, err
				}
				progress(fmt.Sprintf("%d networks seen", len(bss)), 1, 1)
				return bss, nil
			})
	})
	api.Handle("POST /api/v1/wifi/connect", func(w http.ResponseWriter, r *http.Request) error {
		var n wifi.Network
		if err := localapi.DecodeJSON(r, &n); err != nil {
			return err
		}
		// Bad input is refused before anything is journalled or changed.
		if err := n.Validate(); err != nil {
			return err
		}
		c, err := d.need()
		if err != nil {
			return err
		}
		rec := WiFiConnectRecord{SSID: n.SSID, PSK: config.Fingerprint(n.PSK), Security: n.Security, Hidden: n.Hidden}
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.connect", Summary: fmt.Sprintf("join Wi-Fi network %q", n.SSID), Request: rec},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				return d.setup.Connect(ctx, c, n) // stops the hotspot first; saves a joined network
			})
	})
	api.Handle("POST /api/v1/wifi/forget", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.WiFiForgetRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if err := (wifi.Network{SSID: req.SSID}).Validate(); err != nil {
			return err
		}
		c, err := d.need()
		if err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.forget", Summary: fmt.Sprintf("forget Wi-Fi network %q", req.SSID), Request: req},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				if err := d.setup.Forget(ctx, c, req.SSID); err != nil {
					return nil, err
				}
				d.addr.Forgotten(req.SSID)
				return c.Status(), nil
			})
	})
}

// uplink is the Wi-Fi link as `net show` lists it beside the wired
// uplinks (wifi.StationDHCP.Uplink); nil without a Wi-Fi interface.
func (d *wifiDomain) uplink() *network.UplinkStatus {
	d.mu.Lock()
	addr := d.addr
	d.mu.Unlock()
	if addr == nil {
		return nil
	}
	return addr.Uplink(d.setup.Active())
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
