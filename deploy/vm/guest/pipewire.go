package guest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/inotify"
)

// PipeWire is the PipeWire stack as a headless box without a user session
// runs it: pipewire, wireplumber (which runs PipeWire's bluez5 plugin: the
// A2DP endpoints and HFP's AT commands) and pipewire-pulse (the native
// Pulse protocol the agent drives it through), as root, in a private
// runtime folder, with no session bus. Debian 12: PipeWire 0.3.65,
// WirePlumber 0.4.13.
type PipeWire struct {
	Native string // unix:/run/bt-pipewire/run/pulse/native
	Dir    string
	// Env is the environment of the stack's clients (pactl with
	// PULSE_SERVER=Native, wpctl, pw-dump).
	Env                          []string
	PipeWire, WirePlumber, Pulse *Proc
}

// pipeWireLua are WirePlumber's overrides a headless box needs (the
// lab-spike's pipewire-and-brokers.md found each):
var pipeWireLua = map[string]string{
	// Without a session bus WirePlumber exits ("Cannot autolaunch D-Bus
	// without X11 $DISPLAY", status 70) unless device reservation and the
	// flatpak portal are off.
	"main.lua.d/51-board.lua": `alsa_monitor.properties["alsa.reserve"] = false
default_access.properties["enable-flatpak-portal"] = false
`,
	"bluetooth.lua.d/51-board.lua": `-- no user session: no logind seat to follow
bluez_monitor.properties["with-logind"] = false
-- the board is HFP's audio gateway; the hands-free role (0x111e) is the
-- HF fake's on the headset side: WirePlumber must not take its UUID (it
-- registers again first after a bluetoothd restart: "UUID already
-- registered" for the fake). hsp_hs: the headset side's HSP.
bluez_monitor.properties["bluez5.headset-roles"] = "[ hsp_hs hfp_ag ]"
-- btvirt carries SBC; other codecs only slow the A2DP setup under TCG
bluez_monitor.properties["bluez5.codecs"] = "[ sbc ]"
-- one PipeWire serves both controllers: the headset side (hci1) must not
-- connect back to the board's A2DP sink and HSP endpoints
table.insert(bluez_monitor.rules, {
  matches = { { { "device.name", "equals", "bluez_card.00_AA_01_00_00_00" } } },
  apply_properties = { ["bluez5.auto-connect"] = "[ ]" },
})
-- the board's music arriving on the headset side is a capture node (the
-- test records it), not linked to a default sink
table.insert(bluez_monitor.rules, {
  matches = { { { "node.name", "matches", "bluez_input.*" } } },
  apply_properties = { ["bluez5.media-source-role"] = "input" },
})
`,
}

// StartPipeWire starts the stack after bluetoothd (WirePlumber creates its
// bluez monitor once: without org.bluez it gives up for good) and returns
// once pipewire-pulse listens and both controllers list the A2DP UUIDs
// WirePlumber's endpoints add: they must be in the headset side's SDP
// record before the pairing.
func StartPipeWire(t testing.TB, bus *Bus) *PipeWire {
	t.Helper()
	dir := "/run/bt-pipewire"
	os.RemoveAll(dir) // a former test's
	// run/pulse made here: the readiness watch needs its folder.
	for _, d := range []string{"run/pulse", "cfg/wireplumber/main.lua.d", "cfg/wireplumber/bluetooth.lua.d", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, body := range pipeWireLua {
		if err := os.WriteFile(filepath.Join(dir, "cfg/wireplumber", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &PipeWire{Dir: dir, Native: "unix:" + filepath.Join(dir, "run", "pulse", "native")}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DBUS_SESSION_BUS_ADDRESS=") && !strings.HasPrefix(e, "XDG_") && !strings.HasPrefix(e, "PULSE_") {
			p.Env = append(p.Env, e)
		}
	}
	p.Env = append(p.Env, "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"), "XDG_CONFIG_HOME="+filepath.Join(dir, "cfg"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"), "HOME="+filepath.Join(dir, "home"), "DISPLAY=",
		"DBUS_SYSTEM_BUS_ADDRESS="+bus.Address, "PULSE_SERVER="+p.Native)
	cmd := func(name string, debug ...string) *exec.Cmd {
		c := exec.Command(name)
		c.Env = append(slices.Clone(p.Env), append([]string{"PIPEWIRE_LOG_SYSTEMD=false"}, debug...)...)
		return c
	}
	p.PipeWire = StartDaemon(t, "pipewire", cmd("pipewire", "PIPEWIRE_DEBUG=3"), 30*time.Second, func(ctx context.Context) error {
		return inotify.WaitExist(ctx, filepath.Join(dir, "run", "pipewire-0"))
	})
	// WIREPLUMBER_DEBUG takes a plain level in 0.4.13. At 4 its log shows
	// the bluez5 plugin's RFCOMM exchange (AT+BRSF…), but it writes
	// thousands of lines a second under TCG: linking a stream took 4 s
	// and more, and the play-and-record test's streams timed out. The HF
	// fake's own log has the AT exchange.
	p.WirePlumber = StartDaemon(t, "wireplumber", cmd("wireplumber", "WIREPLUMBER_DEBUG=3"), 60*time.Second, func(ctx context.Context) error {
		return WaitA2DPEndpoints(ctx, bus)
	})
	p.Pulse = StartDaemon(t, "pipewire-pulse", cmd("pipewire-pulse", "PIPEWIRE_DEBUG=3"), 30*time.Second, func(ctx context.Context) error {
		return inotify.WaitExist(ctx, filepath.Join(dir, "run", "pulse", "native"))
	})
	return p
}

// WaitA2DPEndpoints waits until hci0 and hci1 list the A2DP source and
// sink UUIDs (110a, 110b), which the sound server's endpoints add: at
// WirePlumber's start, and again after a bluetoothd restart (it registers
// them by itself). It reads the adapters again at each PropertiesChanged.
func WaitA2DPEndpoints(ctx context.Context, bus *Bus) error {
	w, err := watchBluez(bus, "PropertiesChanged")
	if err != nil {
		return err
	}
	defer w.conn.Close()
	var last map[string][]string
	_, err = w.until(ctx, nil, func(objs bluezObjects) bool {
		last = map[string][]string{}
		ok := true
		for _, a := range []string{"hci0", "hci1"} {
			var uuids []string
			if v, found := objs[dbus.ObjectPath("/org/bluez/"+a)]["org.bluez.Adapter1"]["UUIDs"]; found {
				v.Store(&uuids)
			}
			last[a] = uuids
			for _, short := range []string{"110a", "110b"} {
				ok = ok && slices.ContainsFunc(uuids, func(u string) bool { return strings.HasPrefix(u, "0000"+short) })
			}
		}
		return ok
	})
	if err != nil {
		return fmt.Errorf("the adapters do not list the sound server's A2DP endpoints (UUIDs %v): %w", last, err)
	}
	return nil
}
