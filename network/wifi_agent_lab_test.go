//go:build lab

package network_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/network"
)

// TestWiFiGuestAgent runs the agent (boxagent serve, in-process) on the
// virtual board with a saved network in its config: it joins it at start
// and gets an address from dnsmasq behind the AP; then the CLI scans,
// refuses a wrong password with the PSK nowhere in the journal, and
// forgets the network.
func TestWiFiGuestAgent(t *testing.T) {
	vm.RequireGuest(t)
	radios := guest.Hwsim(t, 2)
	ap, sta := radios[0], radios[1]
	bus := guest.StartSystemBus(t)
	guest.StartWpaSupplicant(t, bus)
	guest.StartHostapd(t, guest.HostapdConfig{Interface: ap, SSID: "lab-agent", Security: guest.APWPA2, Passphrase: "agentpassword"})
	guest.InitNS.Addr(t, ap, "10.78.0.1/24")
	guest.StartDnsmasq(t, guest.DnsmasqConfig{Interface: ap, Range: "10.78.0.100,10.78.0.150,255.255.255.0,1h", NoPing: true})

	root := t.TempDir()
	cfg := filepath.Join(root, "etc/boxagent/config.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	os.WriteFile(cfg, []byte(`board = "auto"
[wifi]
interface = "`+sta+`"
[[wifi.network]]
ssid = "lab-agent"
psk = "agentpassword"
priority = 5
`), 0o600)

	// Readiness from sd_notify, as systemd would see it.
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

	// The saved network joins by itself, and the link gets an address:
	// wait on the agent's events, not a poll.
	evCtx, evCancel := context.WithTimeout(ctx, 60*time.Second)
	defer evCancel()
	var bound time.Duration
	err = c.EventsSince(evCtx, 0, func(ev localapi.Event) error {
		if ev.Type != "wifi.dhcp" {
			return nil
		}
		var d struct {
			State string `json:"state"`
			Lease *struct {
				Address string `json:"address"`
			} `json:"lease"`
		}
		if json.Unmarshal(ev.Data, &d) == nil && d.State == "bound" && d.Lease != nil {
			bound = time.Since(start)
			t.Logf("agent start to Wi-Fi address %s: %s", d.Lease.Address, bound.Round(time.Millisecond))
			return client.ErrStop
		}
		return nil
	})
	if err != nil || bound == 0 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("no DHCP lease over Wi-Fi: %v\nagent log:\n%s", err, wifiTail(string(b), 40))
	}
	st, err := c.WiFiStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GET /api/v1/wifi: %+v link %+v", st, st.Link)
	if st.State != network.WiFiStateCompleted || st.SSID != "lab-agent" || !strings.HasPrefix(st.Address, "10.78.0.") || st.Link == nil {
		t.Errorf("status = %+v", st)
	}

	run := func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		e := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := cli.Run(ctx, e, append(args, "--socket", socket))
		return out.String(), errb.String(), code
	}
	out, errs, code := run("", "wifi", "status")
	t.Logf("boxagent wifi status:\n%s%s", out, errs)
	if code != 0 || !strings.Contains(out, "lab-agent") {
		t.Errorf("wifi status: exit %d", code)
	}
	out, errs, code = run("", "wifi", "scan")
	t.Logf("boxagent wifi scan:\n%s%s", out, errs)
	if code != 0 || !strings.Contains(out, "lab-agent") || !strings.Contains(out, "wpa2") {
		t.Errorf("wifi scan: exit %d", code)
	}
	start = time.Now()
	out, errs, code = run("wrong-password\n", "wifi", "connect", "lab-agent", "--psk-stdin")
	t.Logf("boxagent wifi connect (wrong password) in %s: exit %d\n%s%s", time.Since(start).Round(time.Millisecond), code, out, errs)
	if code != 1 || !strings.Contains(errs, "wrong password") {
		t.Errorf("connect with a wrong password: exit %d, %q", code, errs)
	}
	ops, err := c.Operations(ctx, journal.Query{Kind: "wifi.connect"})
	if err != nil || len(ops) != 1 {
		t.Fatalf("journal: %+v, %v", ops, err)
	}
	if req := string(ops[0].Request); strings.Contains(req, "wrong-password") || !strings.Contains(req, "sha256:") {
		t.Errorf("journalled request %s", req)
	}
	if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("wrong-password")) || bytes.Contains(b, []byte("agentpassword")) {
		t.Errorf("the agent logged a PSK")
	}
	out, errs, code = run("", "wifi", "forget", "lab-agent", "--json")
	if code != 0 {
		t.Errorf("wifi forget: exit %d: %s", code, errs)
	}
	t.Logf("boxagent wifi forget: %s", out)
}

func wifiTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
