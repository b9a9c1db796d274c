//go:build lab

package network_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
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

	root := t.TempDir()
	cfg := filepath.Join(root, "etc/boxagent/config.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	os.WriteFile(cfg, []byte(`board = "auto"
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
`), 0o600)

	notifyPath := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", notifyPath)
	logPath := filepath.Join(guest.LogDir(t), "boxagent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	start := time.Now()
	go func() {
		e := &cli.Env{Stdin: strings.NewReader(""), Stdout: logf, Stderr: logf, Getenv: os.Getenv}
		served <- cli.Run(ctx, e, []string{"serve", "--root", root, "--listen", "127.0.0.1:0", "--log-level", "debug"})
	}()
	defer func() {
		cancel()
		<-served
	}()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from the agent: %v", err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	socket := filepath.Join(root, "run/boxagent/api.sock")
	c := client.New(socket, "cli")

	waitBound := func(what string) {
		t.Helper()
		evCtx, evCancel := context.WithTimeout(ctx, 30*time.Second)
		defer evCancel()
		err := c.EventsSince(evCtx, 0, func(ev localapi.Event) error {
			if ev.Type != "net" {
				return nil
			}
			var d struct {
				Kind string `json:"kind"`
				DHCP *struct {
					State string `json:"state"`
				} `json:"dhcp"`
			}
			if json.Unmarshal(ev.Data, &d) == nil && d.Kind == "dhcp" && d.DHCP != nil && d.DHCP.State == "bound" {
				return client.ErrStop
			}
			return nil
		})
		if err != nil {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s: no bound lease: %v\nagent log:\n%s", what, err, b)
		}
	}
	waitBound("at start")
	t.Logf("agent start to a lease on eth4.45: %s", time.Since(start).Round(time.Millisecond))

	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := cli.Run(ctx, e, append(args, "--socket", socket))
		return out.String(), errb.String(), code
	}
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
