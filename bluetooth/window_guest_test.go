//go:build lab

package bluetooth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestGuestPairingWindow: the headset side (hci1) starts the pairing, as a
// headset in pairing mode does with a box it found. Outside a pairing
// window the box's adapter is not pairable (the agent's enforceWindow):
// the box's kernel answers "pairing not allowed", the headset side's Pair
// fails at once ("Authentication Failed") and the box holds no pairing of
// it. The agent is not asked: the kernel refuses before bluetoothd would
// (and BlueZ says nothing of it on the bus). Inside the window the same
// attempt pairs, and closing the window makes the adapter not pairable
// again.
func TestGuestPairingWindow(t *testing.T) {
	ents, _ := os.ReadDir("/var/lib/bluetooth")
	for _, e := range ents {
		os.RemoveAll(filepath.Join("/var/lib/bluetooth", e.Name()))
	}
	r := startLabRig(t)
	hci0, hci1 := dbus.ObjectPath(bluezRoot+"/hci0"), dbus.ObjectPath(bluezRoot+"/hci1")
	box := devicePath(hci1, guest.BtvirtAddr0) // the box, as the headset side sees it

	step(t, "headset finds the box", func(t *testing.T) {
		for _, a := range []string{"hci0", "hci1"} {
			if _, err := r.c.SetPowered(r.ctx, a, true); err != nil {
				t.Fatal(err)
			}
		}
		// The box is discoverable (it is connectable anyway); its agent
		// keeps it not pairable while no window is open.
		if err := r.rawCall(t, 5*time.Second, hci0, "org.freedesktop.DBus.Properties.Set", ifaceAdapter, "Discoverable", dbus.MakeVariant(true)); err != nil {
			t.Fatal(err)
		}
		r.findFrom(t, hci1, box)
		if ad, _ := r.c.AdapterByName("hci0"); ad.Pairable {
			t.Fatalf("hci0 is pairable with no pairing window open: %+v", ad)
		}
	})

	step(t, "outside the window: refused", func(t *testing.T) {
		mark := r.ev.mark()
		t0 := time.Now()
		err := r.rawCall(t, 40*time.Second, box, ifaceDevice+".Pair")
		t.Logf("the headset side's Pair, no window open: %v (%s)", err, time.Since(t0).Round(10*time.Millisecond))
		if err == nil {
			t.Fatal("the headset side paired with the box while no pairing window was open")
		}
		if d, err := r.c.Device(guest.BtvirtAddr1); err == nil && d.Paired {
			t.Fatalf("the box holds a pairing of the headset: %+v", d)
		}
		r.logEventsFrom(t, mark)
	})

	step(t, "inside the window: paired", func(t *testing.T) {
		if _, err := r.c.OpenPairingWindow(r.ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		mark := r.ev.mark()
		t0 := time.Now()
		if err := r.rawCall(t, 40*time.Second, box, ifaceDevice+".Pair"); err != nil {
			t.Fatalf("the headset side's Pair in the window: %v", err)
		}
		t.Logf("the headset side paired in the window in %s", time.Since(t0).Round(10*time.Millisecond))
		waitLong(t, r.ev, mark, 20*time.Second, "the box holds the pairing", isDevice(guest.BtvirtAddr1, func(d Device) bool { return d.Paired }))
		r.logEventsFrom(t, mark)
		mark = r.ev.mark()
		if _, err := r.c.ClosePairingWindow(r.ctx); err != nil {
			t.Fatal(err)
		}
		waitLong(t, r.ev, mark, 10*time.Second, "hci0 not pairable after the window closed", func(Event) bool {
			ad, err := r.c.AdapterByName("hci0")
			return err == nil && !ad.Pairable
		})
	})
}

// findFrom has adapter scan until the device object dev appears.
func (r *labRig) findFrom(t *testing.T, adapter, dev dbus.ObjectPath) {
	t.Helper()
	has := func() bool {
		var objs map[dbus.ObjectPath]map[string]map[string]dbus.Variant
		r.raw.Object(busName, "/").Call("org.freedesktop.DBus.ObjectManager.GetManagedObjects", 0).Store(&objs)
		_, ok := objs[dev]
		return ok
	}
	if err := r.rawCall(t, 5*time.Second, adapter, ifaceAdapter+".StartDiscovery"); err != nil {
		t.Fatal(err)
	}
	defer r.rawCall(t, 5*time.Second, adapter, ifaceAdapter+".StopDiscovery")
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	for !has() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not find %s in 30 s", adapter, dev)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logEventsFrom logs the agent's events since mark: its decisions, and
// what the model saw of the attempt.
func (r *labRig) logEventsFrom(t *testing.T, mark int) {
	r.ev.mu.Lock()
	defer r.ev.mu.Unlock()
	var lines []string
	for _, e := range r.ev.all[mark:] {
		s := e.Type + " " + e.Message
		if e.Decision != nil {
			s += " decision " + e.Decision.Method + " " + e.Decision.Address + " accept=" + map[bool]string{true: "yes", false: "no"}[e.Decision.Accept] + " " + e.Decision.Reason
		}
		if e.Device != nil {
			s += " device " + e.Device.Address + " paired=" + map[bool]string{true: "yes", false: "no"}[e.Device.Paired]
		}
		lines = append(lines, s)
	}
	t.Logf("agent events:\n%s", strings.Join(lines, "\n"))
}
