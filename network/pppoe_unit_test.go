package network

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"github.com/vishvananda/netns"
)

// TestPPPoEUnitProperties: the transient unit carries the password only
// behind its stdin descriptor (passwordfd 0), nothing else of it.
func TestPPPoEUnitProperties(t *testing.T) {
	const secret = "s3cret-pw"
	u := Uplink{Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "alice@isp", Password: secret, MTU: 1492}}
	cfg := PPPoEConfigFor(u)
	cfg.PPPD = DefaultPPPD
	args := cfg.args((&unitRunner{}).passwordFD())
	props := unitProperties("wan", cfg, args, 7, 8)
	got := map[string]dbus.Variant{}
	for _, p := range props {
		if _, dup := got[p.Name]; dup {
			t.Errorf("property %s twice", p.Name)
		}
		got[p.Name] = p.Value
		if s := fmt.Sprintf("%v", p.Value.Value()); strings.Contains(s, secret) {
			t.Errorf("property %s holds the password: %s", p.Name, s)
		}
	}
	for name, want := range map[string]any{
		"Type": "simple", "Restart": "no", "KillMode": "control-group", "CollectMode": "inactive-or-failed",
		"StandardError": "journal", "StandardInputFileDescriptor": dbus.UnixFD(7), "StandardOutputFileDescriptor": dbus.UnixFD(8),
	} {
		v, ok := got[name]
		if !ok {
			t.Errorf("no property %s", name)
			continue
		}
		if fmt.Sprintf("%#v", v.Value()) != fmt.Sprintf("%#v", want) {
			t.Errorf("%s = %#v, want %#v", name, v.Value(), want)
		}
	}
	if d, _ := got["Description"].Value().(string); !strings.Contains(d, "uplink wan on eth0.35") {
		t.Errorf("Description %q should name the uplink and its link", d)
	}
	exec := fmt.Sprintf("%v", got["ExecStart"].Value())
	if !strings.Contains(exec, "/usr/sbin/pppd") || !strings.Contains(exec, "passwordfd 0") || !strings.Contains(exec, "user alice@isp") {
		t.Errorf("ExecStart %s: want pppd reading the password from fd 0", exec)
	}
	if !slices.Contains(args, "nodetach") || strings.Contains(strings.Join(args, " "), "passwordfd 3") {
		t.Errorf("args %q", args)
	}
	// No dependency on the agent's unit: BindsTo=/PartOf= would have PID 1
	// restart the unit (with a drained stdin) when the agent restarts.
	for _, p := range props {
		if slices.Contains([]string{"BindsTo", "PartOf", "After", "Requires", "StopPropagatedFrom"}, p.Name) {
			t.Errorf("the unit has %s", p.Name)
		}
	}
}

func TestPPPoEUnitName(t *testing.T) {
	for in, want := range map[string]string{
		"wan":     "boxagent-pppoe-wan.service",
		"eth0.35": "boxagent-pppoe-eth0.35.service",
		"isp-wan": `boxagent-pppoe-isp\x2dwan.service`,
		".x":      `boxagent-pppoe-\x2ex.service`,
		"a b@c":   `boxagent-pppoe-a\x20b\x40c.service`,
		"ppp_0:1": "boxagent-pppoe-ppp_0:1.service",
	} {
		if got := PPPoEUnitName(in); got != want {
			t.Errorf("PPPoEUnitName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChoosePPPD(t *testing.T) {
	booted := true
	old := systemdBooted
	systemdBooted = func() bool { return booted }
	defer func() { systemdBooted = old }()
	ns, err := netns.Get()
	if err != nil {
		t.Skip("no namespace handle:", err)
	}
	defer ns.Close()
	for _, c := range []struct {
		setting string
		booted  bool
		ns      netns.NsHandle
		want    string
		err     string
	}{
		{"", true, netns.None(), PPPDSystemd, ""},
		{"auto", false, netns.None(), PPPDChild, ""},
		{"auto", true, ns, PPPDChild, ""},
		{"child", true, netns.None(), PPPDChild, ""},
		{"systemd", false, netns.None(), PPPDSystemd, ""},
		{"systemd", true, ns, "", "network namespace"},
		{"sytemd", true, netns.None(), "", `"sytemd" is not one of "auto", "systemd", "child"`},
	} {
		booted = c.booted
		got, err := ChoosePPPD(c.setting, c.ns)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("ChoosePPPD(%q, booted %v, ns %v) = %q, %v; want %q, %q", c.setting, c.booted, c.ns.IsOpen(), got, err, c.want, c.err)
		}
	}
}

func TestPPPDConfigKey(t *testing.T) {
	if err := (Config{PPPD: "systemd"}).Validate(); err != nil {
		t.Errorf("pppd = systemd: %v", err)
	}
	ps := Config{PPPD: "daemon"}.Problems()
	if len(ps) != 1 || ps[0].Key != "pppd" || !strings.Contains(ps[0].Msg, `"daemon" is not one of`) {
		t.Errorf("pppd = daemon: %+v", ps)
	}
}
