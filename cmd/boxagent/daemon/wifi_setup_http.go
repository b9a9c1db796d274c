package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/web"
	"github.com/boxagent/boxagent/wifi"
)

// The setup hotspot's API calls, and its web listener (the hotspot
// itself, its states and its joins are wifi.Setup's).
//
// The listener is on the hotspot's own address, port 80. Its clients
// need no login (the WPA2 password of the hotspot was the credential),
// so it serves the setup page and exactly two calls: the scan list and
// one network to join. Everything else, the captive-portal probes of
// phones and laptops included (/generate_204, /hotspot-detect.html,
// /connecttest.txt, /ncsi.txt…), is redirected to the page, which makes
// the phone show it by itself.

// setupPage is where every other request is sent.
func setupPage() string {
	return "http://" + wifi.HotspotPrefix.Addr().String() + "/setup.html"
}

// registerSetup adds the hotspot's API calls.
func (d *wifiDomain) registerSetup(api *localapi.Server) {
	api.Handle("GET /api/v1/wifi/setup", func(w http.ResponseWriter, r *http.Request) error {
		localapi.WriteJSON(w, http.StatusOK, d.setup.Status(overUnixSocket(r)))
		return nil
	})
	api.Handle("POST /api/v1/wifi/setup/start", func(w http.ResponseWriter, r *http.Request) error {
		if _, err := d.need(); err != nil {
			return err
		}
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.setup.start", Summary: "open the Wi-Fi setup hotspot"},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return d.setup.Start(ctx, false) })
	})
	api.Handle("POST /api/v1/wifi/setup/stop", func(w http.ResponseWriter, r *http.Request) error {
		return api.Operate(w, r, localapi.Spec{Kind: "wifi.setup.stop", Summary: "close the Wi-Fi setup hotspot"},
			func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return d.setup.Stop(ctx) })
	})
}

// overUnixSocket says whether r came over the unix socket, whose callers
// are root or the agent's group: they may see the hotspot's password.
func overUnixSocket(r *http.Request) bool {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return a != nil && a.Network() == "unix"
}

// serveSetupPage listens on addr:80 and serves the captive handler
// until Close: the hotspot's wifi.SetupOptions.Serve.
func (d *wifiDomain) serveSetupPage(addr netip.Addr) (io.Closer, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 80).String())
	if err != nil {
		return nil, fmt.Errorf("cannot open the setup page's listener: %w", err)
	}
	// The API's timeouts, and fewer connections: a phone or two.
	srv := newServer(d.captiveHandler(), DefaultTimeouts, d.log.With("part", "setup"))
	go srv.Serve(limitConns(srv, ln, maxSetupConns))
	return srv, nil
}

// captiveHandler is the hotspot listener's whole surface.
func (d *wifiDomain) captiveHandler() http.Handler {
	page := web.Handler()
	mux := http.NewServeMux()
	for _, p := range []string{"/setup.html", "/setup.js", "/style.css", "/i18n/en.json", "/i18n/zh-CN.json"} {
		mux.Handle("GET "+p, page)
	}
	mux.HandleFunc("GET /setup/networks", func(w http.ResponseWriter, r *http.Request) {
		writeSetupJSON(w, http.StatusOK, setupNetworks(d.setup.Networks()))
	})
	mux.HandleFunc("GET /setup/status", func(w http.ResponseWriter, r *http.Request) {
		st := d.setup.Status(false)
		// What the page needs, nothing of the box beyond it.
		writeSetupJSON(w, http.StatusOK, wifi.SetupStatus{State: st.State, SSID: st.SSID,
			LastSSID: st.LastSSID, LastError: st.LastError, LastErrorCode: st.LastErrorCode})
	})
	mux.HandleFunc("POST /setup/connect", d.httpConnect)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, setupPage(), http.StatusFound)
	})
	return mux
}

// setupNetworks is the page's list of the networks the hotspot offers
// (wifi.Setup.Networks).
func setupNetworks(bss []wifi.BSS) []apitype.WiFiSetupNetwork {
	list := make([]apitype.WiFiSetupNetwork, len(bss))
	for i, b := range bss {
		list[i] = apitype.WiFiSetupNetwork{SSID: b.SSID, Signal: b.Signal, Security: b.Security, Band: b.Band}
	}
	return list
}

func writeSetupJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func setupError(w http.ResponseWriter, status int, code, msg string) {
	writeSetupJSON(w, status, map[string]*apitype.Error{"error": {Code: code, Message: msg}})
}

// httpConnect takes one network from the page and joins it as a
// journalled wifi.connect operation. The answer goes out before the AP
// goes down with the join.
func (d *wifiDomain) httpConnect(w http.ResponseWriter, r *http.Request) {
	var req apitype.WiFiSetupConnectRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		setupError(w, http.StatusBadRequest, "wifi.invalid", "cannot read the request: "+err.Error())
		return
	}
	n := wifi.Network{SSID: req.SSID, PSK: req.Password, Hidden: req.Hidden}
	if err := n.Validate(); err != nil {
		e := mapWiFiError(err)
		setupError(w, http.StatusBadRequest, e.Code, e.Message)
		return
	}
	api, c := d.a.api, d.client()
	if api == nil || c == nil || !d.setup.ReserveJoin() { // one network at a time
		setupError(w, http.StatusConflict, "wifi.setup.busy", "the hotspot is not taking a network now")
		return
	}
	answered := make(chan struct{})
	rec := WiFiConnectRecord{SSID: n.SSID, PSK: config.Fingerprint(n.PSK), Hidden: n.Hidden}
	op, err := api.Run(localapi.Spec{Kind: "wifi.connect", Summary: fmt.Sprintf("join Wi-Fi network %q (from the setup hotspot)", n.SSID), Request: rec, Long: true},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			// The page's answer first: the AP goes down with the join.
			select {
			case <-answered:
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return d.setup.Connect(ctx, c, n)
		})
	if err != nil {
		var ae *apitype.Error
		if !errors.As(err, &ae) {
			ae = &apitype.Error{Code: "internal", Message: err.Error()}
		}
		setupError(w, http.StatusServiceUnavailable, ae.Code, ae.Message)
		d.setup.ReleaseJoin()
		close(answered)
		return
	}
	w.Header().Set("Connection", "close")
	writeSetupJSON(w, http.StatusAccepted, map[string]any{"id": op.ID, "ssid": n.SSID, "state": wifi.SetupJoining})
	http.NewResponseController(w).Flush()
	close(answered)
}
