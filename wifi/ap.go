package wifi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// Access point mode through wpa_supplicant (mode=2, CONFIG_AP, which
// Debian's build has): no second daemon, and wpa_supplicant switches the
// radio between AP and station itself — the boards' chips cannot be both
// at once.

// AP is an access point to open: WPA2-PSK (CCMP) on one 2.4 GHz
// channel.
type AP struct {
	SSID      string
	PSK       string // 8 to 63 characters
	Frequency int    // MHz; default HotspotFrequency
}

// APRun is an access point wpa_supplicant is running for us.
type APRun struct {
	w    *Client
	path dbus.ObjectPath
	ap   AP
}

// wifiAPArgs are AddNetwork's arguments for ap.
func wifiAPArgs(ap AP) map[string]dbus.Variant {
	return map[string]dbus.Variant{
		"ssid":      dbus.MakeVariant([]byte(ap.SSID)),
		"mode":      dbus.MakeVariant(int32(2)),
		"frequency": dbus.MakeVariant(int32(ap.Frequency)),
		"key_mgmt":  dbus.MakeVariant("WPA-PSK"),
		"proto":     dbus.MakeVariant("RSN"),
		"pairwise":  dbus.MakeVariant("CCMP"),
		"group":     dbus.MakeVariant("CCMP"),
		"psk":       dbus.MakeVariant(ap.PSK),
	}
}

// StartAP turns the interface into an access point and waits until it
// beacons (State completed on the AP network), at most timeout. A
// station link it was on goes down, without the re-join that a drop
// otherwise brings; StopAP brings the known networks back.
func (w *Client) StartAP(ctx context.Context, ap AP, timeout time.Duration) (*APRun, error) {
	if ap.Frequency == 0 {
		ap.Frequency = HotspotFrequency
	}
	op := fmt.Sprintf("start access point %q", ap.SSID)
	if l := len(ap.SSID); l == 0 || l > 32 {
		return nil, &Error{Op: op, Err: ErrInvalid, Detail: "an SSID is 1 to 32 bytes"}
	}
	if msg := PSKProblem(ap.PSK); msg != "" || len(ap.PSK) < 8 {
		return nil, &Error{Op: op, Err: ErrInvalid, Detail: "password: " + msg}
	}
	w.opMu.Lock()
	defer w.opMu.Unlock()
	// A drop of the station link on the way is ours: no re-join.
	w.setJoining(true)
	defer w.setJoining(false)
	if err := w.leaveStation(ctx, op); err != nil {
		return nil, err
	}
	var path dbus.ObjectPath
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".AddNetwork", 0, wifiAPArgs(ap)).Store(&path); err != nil {
		return nil, &Error{Op: op, Err: ErrRejected, Detail: "wpa_supplicant refused the network: " + wpabus.ErrorText(err)}
	}
	start := time.Now()
	err := w.obj.CallWithContext(ctx, wpabus.Iface+".SelectNetwork", 0, path).Err
	if err == nil {
		err = w.waitAP(ctx, path, op, timeout)
	} else {
		err = &Error{Op: op, Err: ErrRejected, Detail: "wpa_supplicant: " + wpabus.ErrorText(err)}
	}
	if err != nil {
		w.removeNetwork(path)
		w.enableKnown()
		return nil, err
	}
	w.log.Info("access point up", "ssid", ap.SSID, "frequency", ap.Frequency, "after", time.Since(start).Round(time.Millisecond))
	return &APRun{w: w, path: path, ap: ap}, nil
}

// leaveStation disconnects a station link (or a join under way) and
// waits until wpa_supplicant says disconnected. Switching straight from
// a completed station link to the AP can pass completed → disconnected
// → completed within one batch of wpa_supplicant's property signals,
// which then shows neither the state change nor the new CurrentNetwork.
func (w *Client) leaveStation(ctx context.Context, op string) error {
	w.mu.Lock()
	state := w.st.state
	w.mu.Unlock()
	if state != StateCompleted && !wifiJoining(state) && state != StateScanning {
		return nil
	}
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".Disconnect", 0).Err; err != nil {
		// Not connected after all (NotConnected): nothing to leave.
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		w.mu.Lock()
		st, ch := w.st, w.changed
		w.mu.Unlock()
		switch {
		case st.gone:
			return &Error{Op: op, Err: ErrNoSupplicant}
		case st.state == StateDisconnected || st.state == StateInactive:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return &Error{Op: op, Err: ErrTimeout, Detail: "the station link did not go down; state " + st.state}
		}
	}
}

// waitAP follows the state until the AP network is completed.
func (w *Client) waitAP(ctx context.Context, path dbus.ObjectPath, op string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		w.mu.Lock()
		st, ch := w.st, w.changed
		w.mu.Unlock()
		if st.state == StateCompleted && st.currentNet != path {
			// Completed on something else: CurrentNetwork may have
			// changed without a signal of its own. Read it, at this
			// change only.
			w.refreshCurrent()
			w.mu.Lock()
			st = w.st
			w.mu.Unlock()
		}
		switch {
		case st.gone:
			return &Error{Op: op, Err: ErrNoSupplicant}
		case st.currentNet == path && st.state == StateCompleted:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &Error{Op: op, Err: ErrTimeout, Detail: "the AP did not come up within " + timeout.String() + "; state " + st.state +
					" (does wpa_supplicant have AP support, and the driver AP mode?)"}
			}
			return ctx.Err()
		}
	}
}

// SSID is the access point's name.
func (r *APRun) SSID() string { return r.ap.SSID }

// Stop removes the access point network; wpa_supplicant leaves AP mode
// and the known networks are enabled again, so the best one in range is
// joined.
func (r *APRun) Stop(ctx context.Context) error {
	w := r.w
	w.opMu.Lock()
	defer w.opMu.Unlock()
	w.setJoining(true) // the AP's own "drop" is not one to answer twice
	defer w.setJoining(false)
	if err := w.obj.CallWithContext(ctx, wpabus.Iface+".RemoveNetwork", 0, r.path).Err; err != nil && !w.Status().gone() {
		return fmt.Errorf("cannot stop access point %q: %s", r.ap.SSID, wpabus.ErrorText(err))
	}
	w.enableKnown()
	w.log.Info("access point down", "ssid", r.ap.SSID)
	return nil
}

func (s Status) gone() bool { return s.State == StateAbsent }

// RemoveAPNetworks removes the access point networks (mode 2) that
// wpa_supplicant holds, e.g. a hotspot left by an agent that was killed:
// left alone it would be adopted as a known network and opened again.
func (w *Client) RemoveAPNetworks(ctx context.Context) int {
	w.opMu.Lock()
	defer w.opMu.Unlock()
	v, err := w.obj.GetProperty(wpabus.Iface + ".Networks")
	if err != nil {
		return 0
	}
	paths, _ := v.Value().([]dbus.ObjectPath)
	n := 0
	for _, p := range paths {
		var props map[string]dbus.Variant
		if err := w.conn.Object(wpabus.Service, p).CallWithContext(ctx, wpabus.Props+".Get", 0, wpabus.NetworkIface, "Properties").Store(&props); err != nil {
			continue
		}
		if mode, _ := props["mode"].Value().(string); mode != "2" {
			continue
		}
		w.removeNetwork(p)
		n++
	}
	if n > 0 {
		w.log.Info("removed access point networks left in wpa_supplicant", "count", n)
		w.enableKnown()
	}
	return n
}

// MarkSaved records that the network joined as n is now one of the
// config file's, so a later SetSaved with the same settings leaves it
// (and the link) alone rather than adding it anew.
func (w *Client) MarkSaved(n Network) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	have, ok := w.nets[n.SSID]
	if !ok {
		return false
	}
	have.saved, have.net = true, n
	return true
}
