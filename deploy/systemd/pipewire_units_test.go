package systemd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/audio"
)

// pipeWireDir holds the packaged system PipeWire (deploy/pipewire).
const pipeWireDir = "../pipewire"

func pipeWireUnit(t *testing.T, name string) Unit {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pipeWireDir, name))
	if err != nil {
		t.Fatal(err)
	}
	u, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return u
}

// env is a unit's Environment= assignments (no quoted values in ours).
func env(u Unit) map[string]string {
	m := map[string]string{}
	for _, w := range u.Words("Service", "Environment") {
		k, v, _ := strings.Cut(w, "=")
		m[k] = v
	}
	return m
}

// TestPipeWireUnits guards what ties the packaged system PipeWire to the
// agent: pipewire-pulse's socket where the agent looks for a system sound
// server, its folder's group one the agent's unit has, one static user
// for the three, made before their start, WirePlumber's overrides where XDG_CONFIG_HOME points,
// and no sharing of the box with the system PulseAudio.
func TestPipeWireUnits(t *testing.T) {
	names := []string{"boxagent-pipewire.service", "boxagent-wireplumber.service", "boxagent-pipewire-pulse.service"}
	for _, name := range names {
		u := pipeWireUnit(t, name)
		for key, want := range map[string]string{
			"User": "boxagent-pipewire", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
			"Restart": "on-failure",
		} {
			if got := u.Get("Service", key); got != want {
				t.Errorf("%s: [Service] %s=%q, want %q", name, key, got, want)
			}
		}
		if !slices.Contains(u.Words("Unit", "Conflicts"), "boxagent-pulseaudio.service") {
			t.Errorf("%s does not conflict with boxagent-pulseaudio.service", name)
		}
		if !slices.Contains(u.Words("Unit", "Before"), "boxagent.service") {
			t.Errorf("%s is not ordered before boxagent.service", name)
		}
		e := env(u)
		if e["PIPEWIRE_RUNTIME_DIR"] != "%t/boxagent-pipewire" {
			t.Errorf("%s: PIPEWIRE_RUNTIME_DIR=%q: the three must share the core socket's folder", name, e["PIPEWIRE_RUNTIME_DIR"])
		}
		if e["XDG_CONFIG_HOME"] != "/usr/share/boxagent/pipewire" {
			t.Errorf("%s: XDG_CONFIG_HOME=%q, want the package's overrides", name, e["XDG_CONFIG_HOME"])
		}
		if u.Get("Service", "DynamicUser") != "" {
			t.Errorf("%s: DynamicUser=: the system bus's dbus-daemon cannot resolve dynamic users (systemd 252), WirePlumber must reach BlueZ", name)
		}
		if name != "boxagent-pipewire.service" && !slices.Contains(u.Words("Unit", "BindsTo"), "boxagent-pipewire.service") {
			t.Errorf("%s is not bound to boxagent-pipewire.service", name)
		}
	}
	// The static user is made before the first start.
	if u := pipeWireUnit(t, "boxagent-pipewire.service"); !slices.Contains(u.Words("Unit", "Requires"), "boxagent-pipewire-user.service") ||
		!slices.Contains(u.Words("Unit", "After"), "boxagent-pipewire-user.service") {
		t.Errorf("boxagent-pipewire.service does not require and follow boxagent-pipewire-user.service")
	}
	if got := pipeWireUnit(t, "boxagent-pipewire-user.service").Get("Service", "ExecStart"); got != "systemd-sysusers boxagent-pipewire.conf" {
		t.Errorf("boxagent-pipewire-user.service: ExecStart=%q", got)
	}
	if b, err := os.ReadFile(filepath.Join(pipeWireDir, "boxagent-pipewire.sysusers")); err != nil || !strings.Contains(string(b), "\nu boxagent-pipewire ") {
		t.Errorf("boxagent-pipewire.sysusers does not make user boxagent-pipewire (%v)", err)
	}

	// The agent's "system" candidate is where pipewire-pulse listens, and
	// the agent's unit has the folder's group.
	pulse := pipeWireUnit(t, "boxagent-pipewire-pulse.service")
	rt := strings.Replace(env(pulse)["PULSE_RUNTIME_PATH"], "%t", "/run", 1)
	if rt != "/run/"+pulse.Get("Service", "RuntimeDirectory") {
		t.Errorf("PULSE_RUNTIME_PATH=%q is not the unit's RuntimeDirectory (%q)", rt, pulse.Get("Service", "RuntimeDirectory"))
	}
	var system string
	for _, s := range (audio.Locator{Getenv: func(string) string { return "" }, RunDir: "/run"}).NativeCandidates() {
		if s.How == "system" {
			system = s.Native
		}
	}
	if want := "unix:" + rt + "/native"; system != want {
		t.Errorf("the agent looks for a system pipewire-pulse at %q, the unit puts it at %q", system, want)
	}
	if g, mode := pulse.Get("Service", "Group"), pulse.Get("Service", "RuntimeDirectoryMode"); !slices.Contains(unit(t, "boxagent.service").Words("Service", "SupplementaryGroups"), g) || mode != "0750" {
		t.Errorf("/run/pulse: group %q mode %q; want a group of boxagent.service's SupplementaryGroups, mode 0750", g, mode)
	}

	// The overrides a headless WirePlumber needs (deploy/pipewire/README.md).
	for file, want := range map[string]string{
		"main.lua.d/51-boxagent.lua":      `alsa_monitor.properties["alsa.reserve"] = false`,
		"bluetooth.lua.d/51-boxagent.lua": `bluez_monitor.properties["with-logind"] = false`,
		"policy.lua.d/51-boxagent.lua":    `bluetooth_policy.policy["media-role.use-headset-profile"] = false`,
	} {
		b, err := os.ReadFile(filepath.Join(pipeWireDir, "wireplumber", file))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("%s lacks %s", file, want)
		}
	}
}
