//go:build lab

package systemd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// pipeWireUnits are the packaged system PipeWire's units
// (deploy/pipewire), in the order they start.
var pipeWireUnits = []string{"boxagent-pipewire.service", "boxagent-wireplumber.service", "boxagent-pipewire-pulse.service"}

// TestGuestPipeWireUnits runs the packaged system PipeWire under systemd
// as a headless box with no user session would (deploy/pipewire): the
// three units and WirePlumber's overrides installed where the .deb puts
// them, an ALSA card (snd-dummy) and two btvirt controllers with
// bluetoothd. Starting boxagent-pipewire-pulse.service makes their user
// and brings up all three as that user; WirePlumber's bluez5 monitor registers
// its A2DP endpoints with BlueZ; the agent as user boxagent reaches
// /run/pulse/native (status and audio show: PipeWire, the dummy card),
// doctor names PipeWire and WirePlumber; starting
// boxagent-pulseaudio.service stops them (Conflicts=).
func TestGuestPipeWireUnits(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	sh(t, `set -e
install -m 0644 "$D/boxagent-pipewire.service" "$D/boxagent-wireplumber.service" "$D/boxagent-pipewire-pulse.service" \
	"$D/boxagent-pipewire-user.service" "$D/boxagent-pulseaudio.service" /lib/systemd/system/
install -D -m 0644 "$D/boxagent-pipewire.sysusers" /usr/lib/sysusers.d/boxagent-pipewire.conf
install -D -m 0644 "$D/system.pa" /usr/share/boxagent/pulseaudio/system.pa
for d in main bluetooth policy; do
	install -D -m 0644 "$D/wireplumber-$d.lua" /usr/share/boxagent/pipewire/wireplumber/$d.lua.d/51-boxagent.lua
done
systemctl daemon-reload
# An ALSA card (its devices' group audio is udevd's).
modprobe snd-dummy
udevadm settle`, "D="+os.Getenv(envLabDir))
	// Two Bluetooth controllers, both set up (the lab's btvirt start,
	// with its fix for the first start's HCI Reset timeout: docs/FLAKES.md),
	// before bluetoothd, which WirePlumber's unit pulls in.
	guest.StartBtvirt(t)
	t.Cleanup(func() {
		run := func(s string) {
			if out, err := runSh(s); err != nil {
				t.Logf("cleanup: %s: %v\n%s", s, err, out)
			}
		}
		// Its own boot (TestLabSystemdPipeWire); left as found anyway.
		run("systemctl stop boxagent-pulseaudio.service boxagent-pipewire.service bluetooth.service")
		run("modprobe -r snd-dummy")
	})

	start := time.Now()
	// One unit pulls the other two (BindsTo=, Wants=), and WirePlumber
	// bluetoothd; the start returns once pipewire-pulse's socket exists
	// (ExecStartPost).
	sh(t, "systemctl start boxagent-pipewire-pulse.service")
	t.Logf("boxagent-pipewire-pulse.service started in %s", time.Since(start).Round(10*time.Millisecond))
	// Their user, made at the first start by boxagent-pipewire-user.service.
	t.Logf("user: %s", strings.TrimSpace(sh(t, "id boxagent-pipewire")))
	uid := uidOf(t, "boxagent-pipewire")
	for _, u := range pipeWireUnits {
		p := show(t, u, "ActiveState", "SubState", "MainPID")
		if p["ActiveState"] != "active" || p["SubState"] != "running" {
			t.Fatalf("%s after the start: %v\n%s", u, p, journal(t, u))
		}
		st := procStatus(t, p["MainPID"])
		t.Logf("%s: %v, Uid %s, Groups %s", u, p, st["Uid"], st["Groups"])
		if !strings.HasPrefix(st["Uid"], uid+"\t") {
			t.Errorf("%s does not run as user boxagent-pipewire (%s)", u, uid)
		}
	}
	// /run/pulse: the agent's group, not everyone's.
	out := sh(t, "stat -c '%a %G' /run/pulse; stat -c '%F %a' /run/pulse/native")
	t.Logf("/run/pulse, native: %s", out)
	if !strings.HasPrefix(out, "750 pulse-access\n") || !strings.Contains(out, "socket") {
		t.Errorf("/run/pulse should be mode 750, group pulse-access, with the socket native in it: %s", out)
	}

	// WirePlumber's bluez5 monitor, running as the dynamic user without a
	// session bus, registered its A2DP endpoints with bluetoothd.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := guest.WaitA2DPEndpoints(ctx, &guest.Bus{Address: "unix:path=/run/dbus/system_bus_socket"}); err != nil {
		t.Errorf("WirePlumber's Bluetooth endpoints: %v\n%s\n%s", err, journal(t, "boxagent-wireplumber.service"), journal(t, "dbus.service"))
	} else {
		t.Logf("hci0 and hci1 list WirePlumber's A2DP endpoints (110a, 110b) %s after the start", time.Since(start).Round(10*time.Millisecond))
	}

	// The agent as user boxagent, under the packaged unit, ordered after
	// the sound server.
	sh(t, "systemctl restart boxagent.service")
	var health apitype.Subsystem
	waitFor(t, 30*time.Second, "audio ok in boxagent status", func() bool {
		var st apitype.Status
		out, err := runSh("boxagent status --json")
		if err != nil || json.Unmarshal([]byte(out), &st) != nil {
			return false
		}
		for _, s := range st.Subsystems {
			if s.Name == "audio" {
				health = s
			}
		}
		return health.State == apitype.StateOK
	})
	t.Logf("status: audio %s: %s", health.State, health.Detail)
	if !strings.HasPrefix(health.Detail, "PipeWire ") {
		t.Errorf("status should name PipeWire: %q", health.Detail)
	}
	var st audio.State
	out = sh(t, "boxagent audio show --json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("audio show --json: %v\n%s", err, out)
	}
	t.Logf("audio show: server %+v", st.Server)
	if st.Server.Backend != audio.BackendPipeWire || st.Server.Native != "unix:/run/pulse/native" {
		t.Errorf("audio show: backend %q at %q, want pipewire at unix:/run/pulse/native", st.Server.Backend, st.Server.Native)
	}
	dummy := false
	for _, c := range st.Cards {
		t.Logf("card %s (%s), profiles %d, active %s", c.Name, c.Driver, len(c.Profiles), c.ActiveProfile)
		dummy = dummy || strings.HasPrefix(c.Name, "alsa_card.") && strings.Contains(strings.ToLower(c.Name), "dummy")
	}
	if !dummy {
		t.Errorf("no card for snd-dummy (WirePlumber's ALSA monitor, group audio):\n%s\n%s", out, journal(t, "boxagent-wireplumber.service"))
	}
	if t.Failed() {
		t.Logf("boxagent.service:\n%s", journal(t, "boxagent.service"))
	}

	var doc struct {
		Checks []apitype.Check `json:"checks"`
	}
	out = sh(t, "boxagent doctor --json || true")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	want := map[string]bool{"pipewire-pulse": true, "wireplumber": true}
	for _, c := range doc.Checks {
		if want[c.Name] {
			t.Logf("doctor: %s %s: %s", c.Name, c.Result, c.Detail)
			if c.Result != apitype.CheckOK {
				t.Errorf("doctor's %s check: %s (%s)", c.Name, c.Result, c.Detail)
			}
			delete(want, c.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("doctor has no check of %v:\n%s", want, out)
	}

	// One sound server per box: the system PulseAudio stops all three.
	sh(t, "systemctl start boxagent-pulseaudio.service")
	for _, u := range pipeWireUnits {
		if p := show(t, u, "ActiveState"); p["ActiveState"] != "inactive" {
			t.Errorf("%s after boxagent-pulseaudio.service started: %v (Conflicts=)", u, p)
		}
	}
}

// runSh runs a shell script and returns its combined output.
func runSh(script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	return string(out), err
}

// waitFor polls cond (each try is a process or a stat: cheap next to a
// shell's start under TCG) until it holds, or fails the test at the
// deadline.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
