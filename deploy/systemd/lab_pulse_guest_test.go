//go:build lab

package systemd

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// TestGuestPulseUnit runs the packaged boxagent-pulseaudio.service under
// systemd, installed where the .deb puts it (the unit, and system.pa under
// /usr/share/boxagent/pulseaudio), with the agent as user boxagent: the
// agent reaches it (audio ok in status) and doctor finds PulseAudio, its
// D-Bus protocol and module-bluetooth-discover loaded.
func TestGuestPulseUnit(t *testing.T) {
	vm.RequireGuest(t)
	installAgent(t)
	installPulseUnit(t)
	start := time.Now()
	// Type=notify: start returns once PulseAudio said it is ready.
	sh(t, "systemctl start boxagent-pulseaudio.service")
	p := show(t, "boxagent-pulseaudio.service", "ActiveState", "SubState", "MainPID")
	if p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Fatalf("boxagent-pulseaudio.service after start: %v\n%s", p, journal(t, "boxagent-pulseaudio.service"))
	}
	t.Logf("boxagent-pulseaudio.service ready in %s: %v", time.Since(start).Round(10*time.Millisecond), p)
	if !strings.HasPrefix(procStatus(t, p["MainPID"])["Uid"], uidOf(t, "pulse")+"\t") {
		t.Errorf("PulseAudio does not run as user pulse")
	}
	// The agent ordered after it (Before=boxagent.service) finds it at
	// its start.
	sh(t, "systemctl restart boxagent.service")
	var doc struct {
		Checks []struct {
			Name   string `json:"name"`
			Result string `json:"result"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	out := sh(t, "boxagent doctor --json || true")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	want := map[string]bool{"pulseaudio": true, "module-dbus-protocol": true, "module-bluetooth-discover": true}
	for _, c := range doc.Checks {
		if want[c.Name] {
			t.Logf("doctor: %s %s: %s", c.Name, c.Result, c.Detail)
			if c.Result != "OK" {
				t.Errorf("doctor's %s check: %s (%s)\n%s", c.Name, c.Result, c.Detail, journal(t, "boxagent.service"))
			}
			delete(want, c.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("doctor has no check of %v:\n%s", want, out)
	}
}

// installPulseUnit installs the packaged system PulseAudio where the .deb
// puts it (the unit, and system.pa under /usr/share/boxagent/pulseaudio),
// and adds user pulse to group bluetooth as the unit's comment asks of a
// PulseAudio board; the unit is not started.
func installPulseUnit(t *testing.T) {
	t.Helper()
	sh(t, `set -e
install -m 0644 "$D/boxagent-pulseaudio.service" /lib/systemd/system/
install -D -m 0644 "$D/system.pa" /usr/share/boxagent/pulseaudio/system.pa
adduser --quiet pulse bluetooth
systemctl daemon-reload`, "D="+os.Getenv(envLabDir))
}
