package network

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPPPoEArgs(t *testing.T) {
	u := Uplink{Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "alice@isp", Password: "s3cret-pw", Service: "inet", MTU: 1492, RouteMetric: 50}}
	cfg := PPPoEConfigFor(u)
	cfg.Unit, cfg.Holdoff = 2, 0
	args := cfg.args(3)
	line := strings.Join(args, " ")
	if strings.Contains(line, "s3cret-pw") {
		t.Fatalf("the password is on pppd's command line: %s", line)
	}
	for _, want := range []string{
		"plugin pppoe.so nic-eth0.35 user alice@isp",
		"plugin passwordfd.so passwordfd 3",
		"noauth nodetach persist maxfail 0 lcp-echo-interval 1 lcp-echo-failure 3 holdoff 1",
		"unit 2", "rp_pppoe_service inet", "mtu 1492 mru 1492", "nodefaultroute",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("pppd args lack %q:\n%s", want, line)
		}
	}
	cfg.PluginDir = "/opt/ppp/plugins"
	if line := strings.Join(cfg.args(3), " "); !strings.Contains(line, "plugin /opt/ppp/plugins/pppoe.so nic-") {
		t.Errorf("a plugin folder set names the plugins in it:\n%s", line)
	}
	cfg.Holdoff = 3 * time.Second
	if a := cfg.args(3); slices.Index(a, "holdoff") < 0 || a[slices.Index(a, "holdoff")+1] != "3" {
		t.Errorf("holdoff: %v", a)
	}
}

func TestPPPoELog(t *testing.T) {
	var events []PPPoEEvent
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	p := &PPPoE{uplink: "wan", cfg: PPPoEConfig{ResolvConf: resolv}, emit: func(e PPPoEEvent) { events = append(events, e) }, log: discardLog()}
	for _, l := range []string{
		"Plugin /usr/lib/pppd/2.4.9/pppoe.so loaded.",
		"PPP session is 1",
		"Using interface ppp0",
		"Connect: ppp0 <--> eth0.35",
		"CHAP authentication succeeded",
		"local  IP address 10.45.0.10",
		"remote IP address 10.45.0.1",
		"primary   DNS address 10.45.0.1",
		"secondary DNS address 192.0.2.53",
	} {
		p.line(l)
	}
	st := p.Status()
	if !st.Up || st.Link != "ppp0" || st.Address.String() != "10.45.0.10" || st.Peer.String() != "10.45.0.1" || st.Connects != 1 || fmt.Sprint(st.DNS) != "[10.45.0.1 192.0.2.53]" {
		t.Errorf("status %+v", st)
	}
	if b, err := os.ReadFile(resolv); err != nil || !strings.HasSuffix(string(b), "\n# wan (pppoe, metric 0): 10.45.0.1 192.0.2.53\nnameserver 10.45.0.1\nnameserver 192.0.2.53\n") {
		t.Errorf("resolv.conf %q, %v", b, err)
	}
	p.line("LCP terminated by peer")
	if st := p.Status(); st.Up || st.LastError != "LCP terminated by peer" || st.DNS != nil {
		t.Errorf("status after hang-up %+v", st)
	}
	// The concentrator's servers go with the session.
	if b, err := os.ReadFile(resolv); err != nil || strings.Contains(string(b), "nameserver") {
		t.Errorf("resolv.conf after hang-up %q, %v", b, err)
	}
	if len(events) != 5 {
		t.Errorf("events %+v", events)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"IPTV_TEST":        "IPTV_TEST",
		"\x01\x02\xb0":     "hex:0102b0",
		"hex:41":           "hex:6865783a3431",
		"\x00\x00\x0d\xe9": "hex:00000de9",
	} {
		if got := printable([]byte(in)); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
