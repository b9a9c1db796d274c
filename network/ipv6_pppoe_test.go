package network

import (
	"slices"
	"strings"
	"testing"
)

// TestPPPoEIPv6: an uplink with IPv6 runs pppd with +ipv6 (in the unit's
// helper too), and the session's link-local address from IPV6CP is in its
// status until the session goes down.
func TestPPPoEIPv6(t *testing.T) {
	u := Uplink{Parent: "eth0", VLAN: ptr(35), IPv4: IPv4{Method: MethodPPPoE, User: "u"}, IPv6: IPv6{Method: IPv6Auto}}
	if p := (Config{Uplinks: []Uplink{u}}).Problems(); len(p) != 0 {
		t.Errorf("problems %v", p)
	}
	cfg := PPPoEConfigFor(u)
	cfg.IPv6 = true
	args := cfg.args(3)
	if !slices.Contains(args, "+ipv6") || strings.Contains(strings.Join(args, " "), "ipv6-up-script") {
		t.Errorf("pppd args %q: want +ipv6, and no ipv6-up-script (pppd 2.4.9 refuses it)", args)
	}
	if sess := cfg.session("p"); !sess.IPv6 || !slices.Contains(sess.config().args(helperPasswordFD), "+ipv6") {
		t.Errorf("the helper's session %+v lost +ipv6", sess)
	}
	cfg.IPv6 = false
	if slices.Contains(cfg.args(3), "+ipv6") {
		t.Error("+ipv6 without IPv6")
	}

	var events []PPPoEEvent
	p := &PPPoE{uplink: "wan", emit: func(e PPPoEEvent) { events = append(events, e) }, log: discardLog()}
	for _, l := range []string{"Using interface ppp0", "local  LL address fe80::7c2d:3f1a:9b4e:1a2b", "remote LL address fe80::1"} {
		p.line(l)
	}
	if st := p.Status(); st.LinkLocal.String() != "fe80::7c2d:3f1a:9b4e:1a2b" || len(events) != 2 || !events[1].Status.LinkLocal.IsValid() {
		t.Errorf("status %+v events %d", st, len(events))
	}
	p.line("LCP terminated by peer")
	if st := p.Status(); st.LinkLocal.IsValid() {
		t.Errorf("link-local after hang-up %+v", st)
	}
}
