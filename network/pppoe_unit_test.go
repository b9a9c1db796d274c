package network

import (
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

func TestPPPoEUnitName(t *testing.T) {
	for in, want := range map[string]string{
		"wan":     "boxagent-pppoe@wan.service",
		"eth0.35": "boxagent-pppoe@eth0.35.service",
		"isp-wan": `boxagent-pppoe@isp\x2dwan.service`,
		".x":      `boxagent-pppoe@\x2ex.service`,
		"a b@c":   `boxagent-pppoe@a\x20b\x40c.service`,
		"ppp_0:1": "boxagent-pppoe@ppp_0:1.service",
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
