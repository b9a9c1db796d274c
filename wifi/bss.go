package wifi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// BSS is one access point seen in a scan.
type BSS struct {
	SSID      string `json:"ssid"` // empty for a hidden network not probed by name
	BSSID     string `json:"bssid"`
	Signal    int    `json:"signal_dbm"`
	Frequency int    `json:"frequency_mhz"`
	Band      string `json:"band"` // "2.4GHz", "5GHz", "6GHz"
	Security  string `json:"security"`
	// KeyMgmt is what the AP offers, in wpa_supplicant's words ("wpa-psk",
	// "sae"…), RSN then WPA.
	KeyMgmt []string `json:"key_mgmt,omitempty"`

	path dbus.ObjectPath
}

// wifiBand names the band of a frequency in MHz.
func wifiBand(mhz int) string {
	switch {
	case mhz >= 2400 && mhz < 2500:
		return "2.4GHz"
	case mhz >= 5925 && mhz < 7125:
		return "6GHz"
	case mhz >= 4900 && mhz < 5925:
		return "5GHz"
	case mhz >= 58000:
		return "60GHz"
	}
	return ""
}

// parseBSS reads the properties of a fi.w1.wpa_supplicant1.BSS object
// (as in BSSAdded or GetAll) into b, keeping the fields props lacks.
func parseBSS(b *BSS, props map[string]dbus.Variant) {
	if v, ok := props["SSID"].Value().([]byte); ok {
		b.SSID = string(v)
	}
	if v, ok := props["BSSID"].Value().([]byte); ok && len(v) == 6 {
		b.BSSID = net.HardwareAddr(v).String()
	}
	if v, ok := props["Signal"].Value().(int16); ok {
		b.Signal = int(v)
	}
	if v, ok := props["Frequency"].Value().(uint16); ok {
		b.Frequency = int(v)
		b.Band = wifiBand(b.Frequency)
	}
	_, hasRSN := props["RSN"]
	_, hasWPA := props["WPA"]
	_, hasPriv := props["Privacy"]
	if hasRSN || hasWPA || hasPriv {
		priv, _ := props["Privacy"].Value().(bool)
		rsn, _ := props["RSN"].Value().(map[string]dbus.Variant)
		wpa, _ := props["WPA"].Value().(map[string]dbus.Variant)
		b.Security, b.KeyMgmt = wifiSecurity(priv, rsn, wpa)
	}
}

// wifiSecurity tells the security of an AP from its Privacy flag and its
// RSN (WPA2/WPA3) and WPA (WPA1) information elements, as wpa_supplicant
// reports them: dicts whose "KeyMgmt" lists "wpa-psk", "sae", "wpa-eap"…
func wifiSecurity(privacy bool, rsn, wpa map[string]dbus.Variant) (string, []string) {
	rsnKM, _ := rsn["KeyMgmt"].Value().([]string)
	wpaKM, _ := wpa["KeyMgmt"].Value().([]string)
	all := append(slices.Clone(rsnKM), wpaKM...)
	has := func(list []string, match func(string) bool) bool { return slices.ContainsFunc(list, match) }
	isSAE := func(k string) bool { return k == "sae" || k == "ft-sae" || strings.HasPrefix(k, "sae-") }
	isPSK := func(k string) bool { return strings.Contains(k, "psk") }
	isEAP := func(k string) bool { return strings.Contains(k, "eap") }
	isOWE := func(k string) bool { return k == "owe" }
	switch {
	case has(rsnKM, isSAE) && has(rsnKM, isPSK):
		return SecurityTransition, all
	case has(rsnKM, isSAE):
		return SecurityWPA3, all
	case has(rsnKM, isPSK):
		return SecurityWPA2, all
	case has(all, isEAP):
		return SecurityEnterprise, all
	case has(rsnKM, isOWE):
		return SecurityOWE, all
	case has(wpaKM, isPSK):
		return SecurityWPA, all
	case privacy:
		return SecurityWEP, all
	}
	return SecurityOpen, all
}

// Client connection states: wpa_supplicant's Interface.State values.
const (
	StateCompleted    = "completed"
	StateDisconnected = "disconnected"
	StateInactive     = "inactive"
	StateScanning     = "scanning"
	StateDisabled     = "interface_disabled"
	// StateAbsent is boxagent's own: wpa_supplicant or the interface
	// is not there.
	StateAbsent = "absent"
)

// wifiJoining says whether a state is part of joining a network (past
// the scan, before completed).
func wifiJoining(state string) bool {
	switch state {
	case "authenticating", "associating", "associated", "4way_handshake", "group_handshake":
		return true
	}
	return false
}

// wifiReason explains an IEEE 802.11 reason code as DisconnectReason
// reports it (negative: the station itself gave it up).
func wifiReason(code int) string {
	local := code < 0
	if local {
		code = -code
	}
	msg := map[int]string{
		1:  "unspecified reason",
		2:  "previous authentication no longer valid",
		3:  "the AP is leaving or was stopped",
		4:  "inactivity",
		5:  "the AP cannot handle more stations",
		6:  "class 2 frame from a station not authenticated",
		7:  "class 3 frame from a station not associated",
		8:  "the station left",
		9:  "not authenticated",
		14: "message integrity failure",
		15: "4-way handshake timeout (usually a wrong password)",
		16: "group key handshake timeout",
		17: "handshake element differs",
		23: "802.1X authentication failed",
		24: "cipher suite rejected by policy",
	}[code]
	if msg == "" {
		msg = "reason code"
	}
	who := "AP"
	if local {
		who = "station"
	}
	return fmt.Sprintf("%s (%d, by the %s)", msg, code, who)
}

// wifiStatusCode explains an IEEE 802.11 status code of an
// authentication or association reply.
func wifiStatusCode(code int) string {
	msg := map[int]string{
		1:   "unspecified failure",
		10:  "capabilities not supported",
		12:  "refused for a reason outside the standard",
		13:  "authentication algorithm not supported",
		15:  "challenge failure",
		17:  "the AP cannot handle more stations",
		30:  "refused temporarily, try again later",
		31:  "robust management frame policy violation",
		43:  "invalid AKMP",
		53:  "invalid PMKID",
		72:  "SAE: unsupported finite cyclic group",
		77:  "SAE: anti-clogging token required",
		126: "SAE: hash-to-element required",
	}[code]
	if msg == "" {
		msg = "status code"
	}
	return fmt.Sprintf("%s (%d)", msg, code)
}

// Scan asks for an active scan and waits for its end (ScanDone), then
// returns the BSS list.
func (w *Client) Scan(ctx context.Context, timeout time.Duration) ([]BSS, error) {
	return w.ScanChannels(ctx, timeout)
}

// ScanChannels is Scan on the given frequencies (MHz, 20 MHz wide)
// only; none: every channel.
func (w *Client) ScanChannels(ctx context.Context, timeout time.Duration, freqs ...int) ([]BSS, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w.mu.Lock()
	before := w.st.scans
	w.mu.Unlock()
	args := map[string]dbus.Variant{"Type": dbus.MakeVariant("active")}
	if len(freqs) > 0 {
		type channel struct{ Freq, Width uint32 }
		chans := make([]channel, len(freqs))
		for i, f := range freqs {
			chans[i] = channel{uint32(f), 20}
		}
		args["Channels"] = dbus.MakeVariant(chans)
	}
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".Scan", 0, args).Err; err != nil {
		// A scan already running (wpa_supplicant's own) ends with the
		// ScanDone we wait for anyway.
		w.mu.Lock()
		busy := w.st.scanning
		w.mu.Unlock()
		if !busy {
			return nil, &Error{Op: "scan", Err: ErrScanFailed, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
		}
	}
	for {
		w.mu.Lock()
		st, ch := w.st, w.changed
		w.mu.Unlock()
		switch {
		case st.gone:
			return nil, &Error{Op: "scan", Err: ErrNoSupplicant}
		case st.scans > before && !st.scanOK:
			return nil, &Error{Op: "scan", Err: ErrScanFailed, Detail: "the driver reported a failed scan"}
		case st.scans > before:
			return w.BSSs(), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, &Error{Op: "scan", Err: ErrTimeout, Detail: "no ScanDone within " + timeout.String()}
			}
			return nil, ctx.Err()
		}
	}
}
