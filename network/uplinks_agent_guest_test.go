//go:build lab

package network_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/deploy/vm/guest/inproc"
	"github.com/boxagent/boxagent/network"
)

// TestGuestAgentNet runs the agent (boxagent serve, in-process) on the
// virtual board with a VLAN 45 IPoE uplink in its config: it makes the
// VLAN and gets a lease at start; `boxagent net show` shows the VLAN
// with its lease, times and options; renew and apply go through the
// journal.
func TestGuestAgentNet(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, "8021q", "veth")
	isp := guest.NewNetns(t, "ispa")
	guest.Veth(t, "eth4", guest.InitNS, "isp0", isp)
	ispVLAN := isp.AddVLAN(t, "isp0", 45)
	isp.Addr(t, ispVLAN, "10.45.4.1/24")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: ispVLAN, Range: "10.45.4.100,10.45.4.200,255.255.255.0,1h", VendorClass: "IPTV_TEST", NoPing: true,
		Extra: []string{"--dhcp-option=option:router,10.45.4.1", "--dhcp-option=option:dns-server,10.45.4.1"}})

	config := `board = "auto"
[[network.uplink]]
parent = "eth4"
vlan = 45
priority = 6
[network.uplink.ipv4]
method = "dhcp"
vendor_class = "IPTV_TEST"
client_id = "mac"
options = { 125 = "hex:00000de9" }
route_metric = 100
`

	start := time.Now()
	a := serveInGuest(t, "net", config)
	a.waitNet("at start", 30*time.Second, dhcpBound(""))
	t.Logf("agent start to a lease on eth4.45: %s", time.Since(start).Round(time.Millisecond))
	run := a.run

	out, errs, code := run("net", "show")
	t.Logf("boxagent net show:\n%s%s", out, errs)
	if !regexp.MustCompile(`(?m)^eth4\.45 +eth4 +45 +dhcp +up +10\.45\.4\.\d+/24 `).MatchString(out) {
		t.Errorf("net show has no line of eth4.45 up with its lease")
	}
	for _, want := range []string{"eth4.45: dhcp bound", "  renew:", "  expires:", "sent 60   IPTV_TEST", "sent 125  hex:00000de9", "45 pcp 6", "boxagent", "default", "10.45.4.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("net show lacks %q", want)
		}
	}
	if code != 0 {
		t.Errorf("net show: exit %d", code)
	}
	out, errs, code = run("status")
	if code != 0 || !strings.Contains(out, "network:    ok: eth4.45 dhcp up") {
		t.Errorf("status: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = run("net", "renew", "eth4.45")
	if code != 0 {
		t.Errorf("net renew: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = run("net", "apply")
	if code != 0 || !strings.Contains(out, "applied: eth4.45") {
		t.Errorf("net apply: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = run("history")
	t.Logf("boxagent history:\n%s", out)
	for _, want := range []string{"net.apply", "net.renew", "apply [network] at start"} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q", want)
		}
	}
}

// guestAgent is `boxagent serve` run in-process on the board (inproc.StartAgent)
// and its network events in order.
type guestAgent struct {
	t      *testing.T
	socket string
	log    string
	net    chan network.UplinkEvent
}

// serveInGuest starts the agent as inproc.StartAgent does and follows its net
// events from its first; it stops at the test's end.
func serveInGuest(t *testing.T, name, config string) *guestAgent {
	t.Helper()
	a := &guestAgent{t: t, net: make(chan network.UplinkEvent, 1000)}
	var stop func()
	a.socket, a.log, stop = inproc.StartAgent(t, name, config)
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-followed
		stop()
	})
	// The broker still holds every event this early.
	go func() {
		defer close(followed)
		client.New(a.socket, "cli").EventsSince(ctx, 0, func(ev localapi.Event) error {
			var e network.UplinkEvent
			if ev.Type == "net" && json.Unmarshal(ev.Data, &e) == nil {
				select {
				case a.net <- e:
				default:
				}
			}
			return nil
		})
	}()
	return a
}

// run runs the CLI against the agent: stdout, stderr, exit code.
func (a *guestAgent) run(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := cli.Run(context.Background(), e, append(args, "--socket", a.socket))
	return out.String(), errb.String(), code
}

// waitNet waits for the agent's next net event that ok accepts; it
// fails the test with the agent's log after timeout.
func (a *guestAgent) waitNet(what string, timeout time.Duration, ok func(network.UplinkEvent) bool) network.UplinkEvent {
	a.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-a.net:
			if ok(e) {
				return e
			}
		case <-deadline:
			b, _ := os.ReadFile(a.log)
			a.t.Fatalf("%s: no such net event in %s\nagent log:\n%s", what, timeout, b)
		}
	}
}

// dhcpBound accepts a bound lease of link ("": any link).
func dhcpBound(link string) func(network.UplinkEvent) bool {
	return func(e network.UplinkEvent) bool {
		return e.Kind == "dhcp" && e.DHCP != nil && e.DHCP.State == network.StateBound && (link == "" || e.Uplink == link)
	}
}
