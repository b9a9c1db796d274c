package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// Bounds of a scan asked for over the API.
const (
	btScanDefault = 10 * time.Second
	btScanMax     = 120 * time.Second
)

// btDomain wires package bluetooth into the agent: its own system bus
// connection (signals in order), the API calls under /api/v1/bt/, "bt"
// events, and a journal record for every agent decision and
// auto-reconnect attempt.
type btDomain struct {
	a   *agent
	log *slog.Logger
	api *localapi.Server

	mu     sync.Mutex
	conn   *dbus.Conn
	c      *bluetooth.Client
	health apitype.Subsystem
}

func newBluetoothDomain(a *agent) *btDomain {
	return &btDomain{a: a, log: a.log.With("component", "bluetooth"),
		health: apitype.Subsystem{Name: "bluetooth", State: apitype.StateAbsent, Detail: "not started"}}
}

func (d *btDomain) Name() string { return "bluetooth" }

func (d *btDomain) client() (*bluetooth.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil, localapi.Errorf(http.StatusServiceUnavailable, "bluetooth.absent", "Bluetooth is not available: "+d.health.Detail, bluetooth.Hint(bluetooth.ErrAbsent))
	}
	return d.c, nil
}

// Start connects to the system bus and follows BlueZ; bluetoothd may
// come later.
func (d *btDomain) Start(ctx context.Context) error {
	conn, err := dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()), dbus.WithContext(ctx))
	if err != nil {
		// No system bus means no bluetoothd either: absent, not broken.
		d.setHealth(apitype.StateAbsent, "the system bus is not reachable")
		return fmt.Errorf("cannot connect to the system bus: %w", err)
	}
	c := bluetooth.New(conn, bluetooth.Options{Config: d.a.config().Bluetooth, Logger: d.a.log, OnEvent: d.onEvent})
	if err := c.Start(ctx); err != nil {
		conn.Close()
		d.setHealth(apitype.StateFailed, err.Error())
		return err
	}
	d.mu.Lock()
	d.conn, d.c = conn, c
	d.mu.Unlock()
	d.a.statusChanged()
	return nil
}

// The bluetooth client connects a headset's voice profile for audio,
// through the domain, which has the client only while Bluetooth is up.
var (
	_ audio.ProfileConnector = (*bluetooth.Client)(nil)
	_ audio.ProfileConnector = (*btDomain)(nil)
)

// ConnectProfile is audio's way to BlueZ: the client's ConnectProfile,
// or why Bluetooth is not available.
func (d *btDomain) ConnectProfile(ctx context.Context, address, uuid string) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	return c.ConnectProfile(ctx, address, uuid)
}

func (d *btDomain) setHealth(state, detail string) {
	d.mu.Lock()
	d.health = apitype.Subsystem{Name: "bluetooth", State: state, Detail: detail}
	d.mu.Unlock()
	d.a.statusChanged()
}

// Health is ok (bluetoothd, the adapter powered, the agent registered),
// absent (no bluetoothd on the bus) or degraded.
func (d *btDomain) Health() apitype.Subsystem {
	d.mu.Lock()
	c, h := d.c, d.health
	d.mu.Unlock()
	if c == nil {
		return h
	}
	bh := c.Health()
	state := apitype.StateOK
	switch bh.State {
	case bluetooth.HealthAbsent:
		state = apitype.StateAbsent
	case bluetooth.HealthDegraded:
		state = apitype.StateDegraded
	}
	return apitype.Subsystem{Name: "bluetooth", State: state, Detail: bh.Detail}
}

// Stop releases the agent and the connection.
func (d *btDomain) Stop() {
	d.mu.Lock()
	c, conn := d.c, d.conn
	d.c, d.conn = nil, nil
	d.mu.Unlock()
	d.a.statusChanged()
	if c != nil {
		c.Close()
	}
	if conn != nil {
		conn.Close()
	}
}

// Reconfigure applies a reloaded [bluetooth] table.
func (d *btDomain) Reconfigure(ctx context.Context, old, cfg *config.Config) ([]string, error) {
	c, err := d.client()
	if err != nil {
		return nil, nil
	}
	return nil, c.SetConfig(ctx, cfg.Bluetooth)
}

// onEvent publishes the domain's events; the agent's decisions and the
// auto-reconnect attempts are also journalled (origin auto), so history
// says who let which device pair and when.
func (d *btDomain) onEvent(ev bluetooth.Event) {
	d.mu.Lock()
	api := d.api
	d.mu.Unlock()
	if api == nil {
		return
	}
	api.Publish("bt", ev)
	switch {
	case ev.Type == bluetooth.EventAgent && ev.Decision != nil:
		dec := *ev.Decision
		verb := "rejected"
		if dec.Accept {
			verb = "accepted"
		}
		spec := localapi.Spec{Kind: "bt.agent", Request: dec,
			Summary: fmt.Sprintf("agent %s %s from %s: %s", verb, dec.Method, dec.Address, dec.Reason)}
		go d.journal(api, spec, dec, nil)
	case ev.Type == bluetooth.EventReconnect && ev.Device != nil:
		spec := localapi.Spec{Kind: "bt.reconnect", Request: map[string]string{"address": ev.Device.Address},
			Summary: "auto-connect " + ev.Device.Address + ": " + ev.Message}
		var err error
		if ev.Error != "" {
			err = errors.New(ev.Error)
		}
		go d.journal(api, spec, ev, err)
	}
}

func (d *btDomain) journal(api *localapi.Server, spec localapi.Spec, result any, failure error) {
	if _, err := api.Run(spec, func(context.Context, localapi.ProgressFunc) (any, error) {
		return result, failure
	}); err != nil {
		d.log.Warn("cannot journal", "kind", spec.Kind, "err", err)
	}
}

// Register adds /api/v1/bt/….
func (d *btDomain) Register(api *localapi.Server) {
	d.mu.Lock()
	d.api = api
	d.mu.Unlock()
	api.Handle("GET /api/v1/bt/adapters", func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.client()
		if err != nil {
			return err
		}
		ads, err := c.Adapters()
		if err != nil {
			return err
		}
		localapi.WriteJSON(w, http.StatusOK, ads)
		return nil
	})
	api.Handle("GET /api/v1/bt/devices", func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.client()
		if err != nil {
			return err
		}
		ds, err := c.Devices()
		if err != nil {
			return err
		}
		localapi.WriteJSON(w, http.StatusOK, ds)
		return nil
	})
	api.Handle("GET /api/v1/bt/devices/{address}", func(w http.ResponseWriter, r *http.Request) error {
		c, err := d.client()
		if err != nil {
			return err
		}
		addr, err := bluetooth.ParseAddress(r.PathValue("address"))
		if err != nil {
			return err
		}
		dev, err := c.Device(addr)
		if err != nil {
			return err
		}
		localapi.WriteJSON(w, http.StatusOK, dev)
		return nil
	})
	api.Handle("POST /api/v1/bt/scan", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.BtScanRequest
		if r.ContentLength != 0 {
			if err := localapi.DecodeJSON(r, &req); err != nil {
				return err
			}
		}
		dur := time.Duration(req.Timeout * float64(time.Second))
		if req.Timeout == 0 {
			dur = btScanDefault
		}
		if dur < time.Second || dur > btScanMax {
			return localapi.Errorf(http.StatusBadRequest, "bluetooth.invalid", fmt.Sprintf("timeout %gs is out of range 1..%d seconds", req.Timeout, int(btScanMax/time.Second)), "")
		}
		if len(req.Until) > 248 { // a device name's most, in BR/EDR
			return localapi.Errorf(http.StatusBadRequest, "bluetooth.invalid", "until is longer than a device name can be (248 bytes)", "")
		}
		c, err := d.client()
		if err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "bt.scan", Summary: "scan for Bluetooth devices for " + dur.String(), Request: req},
			func(ctx context.Context, progress localapi.ProgressFunc) (any, error) {
				n := int64(0)
				return c.Scan(ctx, bluetooth.ScanOptions{Duration: dur, Until: req.Until}, func(dev bluetooth.Device) {
					n++
					api.Publish("bt.scan", dev)
					progress(scanLine(dev), n, 0)
				})
			})
	})
	address := func(r *http.Request) (string, error) {
		var req apitype.BtAddressRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return "", err
		}
		if req.Address == "" {
			return "", localapi.Errorf(http.StatusBadRequest, "bluetooth.invalid", "missing address", bluetooth.Hint(bluetooth.ErrInvalidAddress))
		}
		return bluetooth.ParseAddress(req.Address)
	}
	api.Handle("POST /api/v1/bt/pair", func(w http.ResponseWriter, r *http.Request) error {
		addr, err := address(r)
		if err != nil {
			return err
		}
		c, err := d.client()
		if err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "bt.pair", Summary: "pair, trust and connect " + addr, Request: apitype.BtAddressRequest{Address: addr}},
			func(ctx context.Context, progress localapi.ProgressFunc) (any, error) {
				dev, err := c.Pair(ctx, addr, func(m string) { progress(m, 0, 0) })
				if err != nil {
					return dev, err
				}
				return d.saveNewHeadset(ctx, dev, func(m string) { progress(m, 0, 0) }), nil
			})
	})
	short := func(path, kind, verb string, fn func(ctx context.Context, c *bluetooth.Client, addr string) (any, error)) {
		api.Handle("POST "+path, func(w http.ResponseWriter, r *http.Request) error {
			addr, err := address(r)
			if err != nil {
				return err
			}
			c, err := d.client()
			if err != nil {
				return err
			}
			return api.Operate(w, r, localapi.Spec{Kind: kind, Summary: verb + " " + addr, Request: apitype.BtAddressRequest{Address: addr}},
				func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return fn(ctx, c, addr) })
		})
	}
	short("/api/v1/bt/connect", "bt.connect", "connect", func(ctx context.Context, c *bluetooth.Client, addr string) (any, error) {
		return c.Connect(ctx, addr, nil)
	})
	short("/api/v1/bt/disconnect", "bt.disconnect", "disconnect", func(ctx context.Context, c *bluetooth.Client, addr string) (any, error) {
		return c.Disconnect(ctx, addr)
	})
	short("/api/v1/bt/remove", "bt.remove", "forget", func(ctx context.Context, c *bluetooth.Client, addr string) (any, error) {
		return apitype.BtRemoveResult{Address: addr, Removed: "true"}, c.Remove(ctx, addr)
	})
	api.Handle("POST /api/v1/bt/power", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.BtPowerRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Adapter != "" {
			if err := (bluetooth.Config{Adapter: req.Adapter}).Validate(); err != nil {
				return localapi.Errorf(http.StatusBadRequest, "bluetooth.invalid", err.Error(), "boxagent bt adapters lists them")
			}
		}
		c, err := d.client()
		if err != nil {
			return err
		}
		summary := map[bool]string{true: "power on ", false: "power off "}[req.On] + req.Adapter
		if req.Adapter == "" {
			summary += "the adapter"
		}
		return api.Operate(w, r, localapi.Spec{Kind: "bt.power", Summary: summary, Request: req},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				return c.SetPowered(ctx, req.Adapter, req.On)
			})
	})
	// Auto-connect is [[bluetooth.headset]] auto_connect in the config
	// file, as it is for the CLI's users: GET lists the configured
	// headsets, POST sets one's flag in the file (the one value edited in
	// place, atomically) and reloads, so it holds after a restart too.
	api.Handle("GET /api/v1/bt/autoconnect", func(w http.ResponseWriter, r *http.Request) error {
		hs := d.a.config().Bluetooth.Headsets
		if hs == nil {
			hs = []bluetooth.Headset{}
		}
		localapi.WriteJSON(w, http.StatusOK, hs)
		return nil
	})
	api.Handle("POST /api/v1/bt/autoconnect", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.BtAutoConnectRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Address == "" {
			return localapi.Errorf(http.StatusBadRequest, "bluetooth.invalid", "missing address", bluetooth.Hint(bluetooth.ErrInvalidAddress))
		}
		addr, err := bluetooth.ParseAddress(req.Address)
		if err != nil {
			return err
		}
		verb := map[bool]string{true: "on", false: "off"}[req.On]
		return api.Operate(w, r, localapi.Spec{Kind: "bt.autoconnect", Summary: "auto-connect " + verb + " for " + addr, Request: apitype.BtAutoConnectRequest{Address: addr, On: req.On}},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				res := apitype.BtAutoConnectResult{Address: addr, AutoConnect: req.On, Config: d.a.cfgPath}
				if _, err := config.SaveHeadsetAutoConnect(d.a.cfgPath, addr, req.On); err != nil {
					return nil, err
				}
				var err error
				res.Reload, err = d.a.ReloadConfig(ctx)
				return res, err
			})
	})
	api.Handle("POST /api/v1/bt/pairable", func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.BtPairableRequest
		if err := localapi.DecodeJSON(r, &req); err != nil {
			return err
		}
		if req.Timeout < 0 || req.Timeout > 3600 {
			return localapi.Errorf(http.StatusBadRequest, "bluetooth.invalid", fmt.Sprintf("timeout %gs is out of range 0..3600 seconds", req.Timeout), "")
		}
		c, err := d.client()
		if err != nil {
			return err
		}
		summary := "close the pairing window"
		if req.On {
			summary = "open a pairing window"
		}
		return api.Operate(w, r, localapi.Spec{Kind: "bt.pairable", Summary: summary, Request: req},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
				var res apitype.BtPairableResult
				var err error
				if req.On {
					res.Adapter, err = c.OpenPairingWindow(ctx, time.Duration(req.Timeout*float64(time.Second)))
					if u := c.PairingWindow(); !u.IsZero() {
						u = u.UTC()
						res.Until = &u
					}
				} else {
					res.Adapter, err = c.ClosePairingWindow(ctx)
				}
				return res, err
			})
	})
}

func scanLine(d bluetooth.Device) string {
	s := "found " + d.Address + " " + d.DisplayName()
	if d.Headset() {
		s += " (headset)"
	}
	return s
}

// saveNewHeadset gives a headset just paired (a device that offers A2DP,
// HFP or HSP) its [[bluetooth.headset]]
// (the default mode, music unless [bluetooth] default_mode says call)
// through the config's one editor, and reloads, so the audio domain puts
// it in that mode when its card appears, now and after a restart. The
// pairing stands if the file cannot be written: that is said in the
// operation's progress and the log.
func (d *btDomain) saveNewHeadset(ctx context.Context, dev bluetooth.Device, progress func(string)) apitype.BtPairResult {
	res := apitype.BtPairResult{Device: dev}
	if !dev.Headset() {
		// A keyboard or a phone is no [[bluetooth.headset]]: being one
		// would also let it pair again outside a window.
		return res
	}
	cfg, added, err := config.SaveNewHeadset(d.a.cfgPath, dev.Address)
	if err != nil {
		d.log.Warn("cannot save the new headset", "device", dev.Address, "err", err)
		progress(err.Error())
		return res
	}
	if !added {
		return res
	}
	h, _ := cfg.Bluetooth.Headset(dev.Address)
	res.Saved = &h
	progress(fmt.Sprintf("saved as a headset in %s, mode %s", d.a.cfgPath, h.Mode))
	if _, err := d.a.ReloadConfig(ctx); err != nil {
		d.log.Warn("cannot reload the config after saving the new headset", "err", err)
		progress("cannot reload the config: " + err.Error())
	}
	return res
}
