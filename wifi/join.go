package wifi

// Joining networks and the list wpa_supplicant holds for us: Connect,
// Forget, the saved networks (SetSaved), the re-join after a drop.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// securityFor decides how to join n: its own Security, else what the
// scan shows for its SSID, else what its PSK allows.
func (w *Client) securityFor(n Network) string {
	if n.Security != "" {
		return n.Security
	}
	w.mu.Lock()
	var best *BSS
	for _, b := range w.bss {
		if b.SSID == n.SSID && (best == nil || b.Signal > best.Signal) {
			best = b
		}
	}
	w.mu.Unlock()
	if best != nil {
		switch best.Security {
		case SecurityOpen, SecurityWPA2, SecurityWPA3, SecurityTransition:
			if (best.Security == SecurityOpen) == (n.PSK == "") {
				return best.Security
			}
		case SecurityWPA:
			return SecurityWPA2 // WPA-PSK key management serves WPA1 too
		}
	}
	switch {
	case n.PSK == "":
		return SecurityOpen
	case isHexKey(n.PSK):
		return SecurityWPA2
	}
	return SecurityTransition
}

// wifiNetworkArgs are AddNetwork's arguments for n joined with security
// sec. Byte arrays reach wpa_supplicant as unquoted hex (the SSID's exact
// bytes, a raw PSK); strings are quoted (a passphrase); integers are
// written as numbers.
func wifiNetworkArgs(n Network, sec string) map[string]dbus.Variant {
	a := map[string]dbus.Variant{"ssid": dbus.MakeVariant([]byte(n.SSID))}
	if n.Hidden {
		a["scan_ssid"] = dbus.MakeVariant(int32(1))
	}
	if n.Priority != 0 {
		a["priority"] = dbus.MakeVariant(int32(n.Priority))
	}
	hexKey := isHexKey(n.PSK)
	switch sec {
	case SecurityOpen:
		a["key_mgmt"] = dbus.MakeVariant("NONE")
	case SecurityWPA3:
		a["key_mgmt"] = dbus.MakeVariant("SAE")
		a["ieee80211w"] = dbus.MakeVariant(uint32(2))
	case SecurityTransition:
		if hexKey {
			a["key_mgmt"] = dbus.MakeVariant("WPA-PSK")
		} else {
			a["key_mgmt"] = dbus.MakeVariant("WPA-PSK SAE")
		}
		a["ieee80211w"] = dbus.MakeVariant(uint32(1))
	default:
		a["key_mgmt"] = dbus.MakeVariant("WPA-PSK")
	}
	if sec != SecurityOpen {
		if hexKey {
			k, _ := hex.DecodeString(n.PSK)
			a["psk"] = dbus.MakeVariant(k)
		} else {
			a["psk"] = dbus.MakeVariant(n.PSK)
		}
	}
	return a
}

// Connect joins n now and waits until the link is up (State completed),
// at most timeout. It fails with ErrWrongPassword, ErrNotFound,
// ErrRejected or ErrTimeout; a network that did not join is
// removed again and the known networks are re-enabled. Invalid input is
// refused before anything changes.
func (w *Client) Connect(ctx context.Context, n Network, timeout time.Duration) (Status, error) {
	if err := n.Validate(); err != nil {
		return Status{}, err
	}
	w.opMu.Lock()
	defer w.opMu.Unlock()
	w.setJoining(true)
	defer w.setJoining(false)
	op := fmt.Sprintf("join %q", n.SSID)
	sec := w.securityFor(n)
	var path dbus.ObjectPath
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".AddNetwork", 0, wifiNetworkArgs(n, sec)).Store(&path); err != nil {
		return w.Status(), &Error{Op: op, Err: ErrRejected, Detail: "wpa_supplicant refused the network: " + wpabus.ErrorText(err)}
	}
	w.mu.Lock()
	before := w.st
	w.mu.Unlock()
	start := time.Now()
	err := w.obj.CallWithContext(ctx, wpabus.Iface+".SelectNetwork", 0, path).Err
	if err == nil {
		err = w.waitJoined(ctx, path, n, sec, before, timeout)
	} else {
		err = &Error{Op: op, Err: ErrRejected, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
	}
	if err != nil {
		w.removeNetwork(path)
		w.log.Info("join failed", "ssid", n.SSID, "security", sec, "err", err, "after", time.Since(start).Round(time.Millisecond))
		w.enableKnown()
		return w.Status(), err
	}
	w.log.Info("joined", "ssid", n.SSID, "security", sec, "after", time.Since(start).Round(time.Millisecond))
	w.mu.Lock()
	old := w.nets[n.SSID]
	w.nets[n.SSID] = &wifiNet{path: path, net: n}
	w.mu.Unlock()
	if old != nil && old.path != path {
		w.removeNetwork(old.path)
	}
	return w.Status(), nil
}

func (w *Client) setJoining(v bool) {
	w.mu.Lock()
	w.joining = v
	w.mu.Unlock()
}

// seen says whether the scan list holds ssid; call with mu held.
func (w *Client) seen(ssid string) bool {
	for _, b := range w.bss {
		if b.SSID == ssid {
			return true
		}
	}
	return false
}

// waitJoined follows the state until path is the completed network, or
// tells why it is not.
func (w *Client) waitJoined(ctx context.Context, path dbus.ObjectPath, n Network, sec string, before wifiState, timeout time.Duration) error {
	op := fmt.Sprintf("join %q", n.SSID)
	fail := func(err error, detail string) error { return &Error{Op: op, Err: err, Detail: detail} }
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// Scans that end without the SSID before it is declared not found: a
	// hidden network needs its directed probes, which wpa_supplicant
	// interleaves with wildcard scans.
	maxScans := 2
	if n.Hidden {
		maxScans = 4
	}
	var reached, authenticating bool
	for {
		w.mu.Lock()
		st, ch, seen := w.st, w.changed, w.seen(n.SSID)
		w.mu.Unlock()
		onOurs := st.currentNet == path
		if onOurs && wifiJoining(st.state) {
			reached = true
		}
		if onOurs && st.state == "authenticating" {
			authenticating = true
		}
		psk := sec != SecurityOpen
		switch {
		case st.gone:
			return fail(ErrNoSupplicant, "")
		case onOurs && st.state == StateCompleted:
			return nil
		case st.pskMismatch > before.pskMismatch:
			return fail(ErrWrongPassword, "the 4-way handshake failed")
		case psk && st.disconnects > before.disconnects && (st.lastReason == 15 || st.lastReason == -15):
			return fail(ErrWrongPassword, wifiReason(st.lastReason))
		case st.authFails > before.authFails:
			return fail(ErrRejected, "authentication refused: "+wifiStatusCode(st.lastAuth))
		case st.assocFails > before.assocFails:
			return fail(ErrRejected, "association refused: "+wifiStatusCode(st.lastAssoc))
		case !seen && !reached && st.scans-before.scans >= maxScans:
			return fail(ErrNotFound, fmt.Sprintf("no AP answered in %d scans", st.scans-before.scans))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			switch {
			case !seen && !reached:
				return fail(ErrNotFound, "no AP answered within "+timeout.String())
			case (sec == SecurityWPA3 || sec == SecurityTransition) && authenticating && !reached:
				return fail(ErrWrongPassword, "SAE authentication did not complete")
			case st.disconnects > before.disconnects:
				return fail(ErrTimeout, "not joined within "+timeout.String()+"; last drop: "+wifiReason(st.lastReason))
			}
			return fail(ErrTimeout, "not joined within "+timeout.String()+"; state "+st.state)
		}
	}
}

func (w *Client) removeNetwork(p dbus.ObjectPath) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".RemoveNetwork", 0, p).Err; err != nil {
		w.log.Warn("cannot remove a network", "path", p, "err", wpabus.ErrorText(err))
	}
	w.mu.Lock()
	for ssid, n := range w.nets {
		if n.path == p {
			delete(w.nets, ssid)
		}
	}
	w.mu.Unlock()
}

// enableKnown enables every network wpa_supplicant holds for us, so it
// joins the best one in range: SelectNetwork disables all the others.
func (w *Client) enableKnown() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.mu.Lock()
	paths := make([]dbus.ObjectPath, 0, len(w.nets))
	for _, n := range w.nets {
		paths = append(paths, n.path)
	}
	w.mu.Unlock()
	for _, p := range paths {
		err := w.conn.Object(wpabus.Service, p).CallWithContext(ctx, wpabus.Props+".Set", 0, wpabus.NetworkIface, "Enabled", dbus.MakeVariant(true)).Err
		if err != nil {
			w.log.Warn("cannot enable a network", "path", p, "err", wpabus.ErrorText(err))
		}
	}
	return len(paths)
}

// rejoinKnown answers a drop: every known network is enabled again and
// wpa_supplicant picks the best in range.
func (w *Client) rejoinKnown(why string) {
	w.opMu.Lock()
	defer w.opMu.Unlock()
	if n := w.enableKnown(); n > 0 {
		w.log.Info("re-joining the best known network", "why", why, "known", n)
		w.emit(Event{Kind: "rejoin", Reason: why, Count: n})
	}
}

// Forget removes the network named ssid from wpa_supplicant (leaving it
// if it is the current one) and lets it join the best other known one.
func (w *Client) Forget(ctx context.Context, ssid string) error {
	w.opMu.Lock()
	defer w.opMu.Unlock()
	w.mu.Lock()
	n, ok := w.nets[ssid]
	w.mu.Unlock()
	if !ok {
		return &Error{Op: fmt.Sprintf("forget %q", ssid), Err: ErrUnknownNetwork}
	}
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".RemoveNetwork", 0, n.path).Err; err != nil {
		return &Error{Op: fmt.Sprintf("forget %q", ssid), Err: ErrUnknownNetwork, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
	}
	w.mu.Lock()
	delete(w.nets, ssid)
	w.mu.Unlock()
	w.enableKnown()
	return nil
}

// SetSaved makes wpa_supplicant hold the saved networks nets (the config
// file's), each enabled with its priority, so it joins the best one in
// range. Saved networks no longer listed are removed; a network whose
// settings did not change is left alone (the link stays up), and so is
// one found in wpa_supplicant that the interface is completed on (the
// key that joined it is not readable back to compare). Networks joined
// through Connect stay.
func (w *Client) SetSaved(ctx context.Context, nets []Network) error {
	if err := (Config{Networks: nets}).ValidateAll(); err != nil {
		return err
	}
	w.opMu.Lock()
	defer w.opMu.Unlock()
	want := map[string]Network{}
	for _, n := range nets {
		want[n.SSID] = n
	}
	w.mu.Lock()
	var remove []dbus.ObjectPath
	var add []Network
	for ssid, have := range w.nets {
		n, ok := want[ssid]
		switch {
		case !ok && have.saved:
			remove = append(remove, have.path)
		case !ok:
		case have.saved && have.net == n:
			delete(want, ssid)
		case !have.saved && have.net.PSK == "" && w.st.currentNet == have.path && w.st.state == StateCompleted:
			// Found at start and working: adopt it.
			have.saved, have.net = true, n
			delete(want, ssid)
		default:
			remove = append(remove, have.path)
		}
	}
	for _, n := range nets {
		if _, ok := want[n.SSID]; ok {
			add = append(add, n)
		}
	}
	w.mu.Unlock()
	for _, p := range remove {
		w.removeNetwork(p)
	}
	var errs []error
	for _, n := range add {
		args := wifiNetworkArgs(n, w.securityFor(n))
		var p dbus.ObjectPath
		if err := w.obj.CallWithContext(ctx, wpabus.Iface+".AddNetwork", 0, args).Store(&p); err != nil {
			errs = append(errs, fmt.Errorf("cannot save %q in wpa_supplicant: %s", n.SSID, wpabus.ErrorText(err)))
			continue
		}
		w.mu.Lock()
		w.nets[n.SSID] = &wifiNet{path: p, net: n, saved: true}
		w.mu.Unlock()
	}
	w.enableKnown()
	return errors.Join(errs...)
}
