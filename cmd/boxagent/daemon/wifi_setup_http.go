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
	"slices"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/web"
	"github.com/boxagent/boxagent/wifi"
)

// The hotspot's web listener, on its own address, port 80. Its clients
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

// SetupNetwork is a network of the setup page's list.
type SetupNetwork struct {
	SSID     string `json:"ssid"`
	Signal   int    `json:"signal_dbm"`
	Security string `json:"security"`
	Band     string `json:"band,omitempty"`
}

// SetupConnectRequest is what the setup page posts.
type SetupConnectRequest struct {
	SSID     string `json:"ssid"`
	Password string `json:"password"`
	Hidden   bool   `json:"hidden,omitempty"`
}

// serve listens on addr:80 and serves the captive handler until Close.
func (s *wifiSetup) serve(addr netip.Addr) (io.Closer, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 80).String())
	if err != nil {
		return nil, fmt.Errorf("cannot open the setup page's listener: %w", err)
	}
	// The API's timeouts, and fewer connections: a phone or two.
	srv := newServer(s.captiveHandler(), DefaultTimeouts, s.log)
	go srv.Serve(limitConns(srv, ln, maxSetupConns))
	return srv, nil
}

// captiveHandler is the hotspot listener's whole surface.
func (s *wifiSetup) captiveHandler() http.Handler {
	page := web.Handler()
	mux := http.NewServeMux()
	for _, p := range []string{"/setup.html", "/setup.js", "/style.css", "/i18n/en.json", "/i18n/zh-CN.json"} {
		mux.Handle("GET "+p, page)
	}
	mux.HandleFunc("GET /setup/networks", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		list := setupNetworks(s.scan)
		s.mu.Unlock()
		writeSetupJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET /setup/status", func(w http.ResponseWriter, r *http.Request) {
		st := s.status(false)
		// What the page needs, nothing of the box beyond it.
		writeSetupJSON(w, http.StatusOK, wifi.SetupStatus{State: st.State, SSID: st.SSID,
			LastSSID: st.LastSSID, LastError: st.LastError, LastErrorCode: st.LastErrorCode})
	})
	mux.HandleFunc("POST /setup/connect", s.httpConnect)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, setupPage(), http.StatusFound)
	})
	return mux
}

// setupNetworks is the scan list for the page: one line per SSID, the
// strongest, without hidden networks and the hotspot itself.
func setupNetworks(bss []wifi.BSS) []SetupNetwork {
	list := []SetupNetwork{}
	seen := map[string]bool{}
	sorted := slices.Clone(bss)
	slices.SortStableFunc(sorted, func(a, b wifi.BSS) int { return b.Signal - a.Signal })
	for _, b := range sorted {
		if b.SSID == "" || seen[b.SSID] {
			continue
		}
		seen[b.SSID] = true
		list = append(list, SetupNetwork{SSID: b.SSID, Signal: b.Signal, Security: b.Security, Band: b.Band})
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
func (s *wifiSetup) httpConnect(w http.ResponseWriter, r *http.Request) {
	var req SetupConnectRequest
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
	c := s.d.client()
	s.mu.Lock()
	open := s.state == setupOn && s.api != nil && c != nil && !s.pending
	if open {
		s.pending = true // one network at a time
	}
	s.mu.Unlock()
	if !open {
		setupError(w, http.StatusConflict, "wifi.setup.busy", "the hotspot is not taking a network now")
		return
	}
	answered := make(chan struct{})
	rec := WiFiConnectRecord{SSID: n.SSID, PSK: config.Fingerprint(n.PSK), Hidden: n.Hidden}
	op, err := s.api.Run(localapi.Spec{Kind: "wifi.connect", Summary: fmt.Sprintf("join Wi-Fi network %q (from the setup hotspot)", n.SSID), Request: rec, Long: true},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			// The page's answer first: the AP goes down with the join.
			select {
			case <-answered:
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return s.connect(ctx, c, n)
		})
	if err != nil {
		var ae *apitype.Error
		if !errors.As(err, &ae) {
			ae = &apitype.Error{Code: "internal", Message: err.Error()}
		}
		setupError(w, http.StatusServiceUnavailable, ae.Code, ae.Message)
		s.mu.Lock()
		s.pending = false
		s.mu.Unlock()
		close(answered)
		return
	}
	w.Header().Set("Connection", "close")
	writeSetupJSON(w, http.StatusAccepted, map[string]any{"id": op.ID, "ssid": n.SSID, "state": setupJoining})
	http.NewResponseController(w).Flush()
	close(answered)
}
