//go:build lab

package wifi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/cli"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/deploy/vm/guest/inproc"
	"github.com/boxagent/boxagent/wifi"
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
	// The DNS server and search domains the lease hands out (option 6,
	// option 119 with its compression pointers) for the agent's
	// resolv.conf; dnsmasq itself serves no DNS here.
	guest.StartDnsmasq(t, guest.DnsmasqConfig{Interface: ap, Range: "10.78.0.100,10.78.0.150,255.255.255.0,1h", NoPing: true,
		Extra: []string{"--dhcp-option=option:dns-server,10.78.0.53", "--dhcp-option=option:domain-search,wifi-lab.example,corp.example"}})

	start := time.Now()
	socket, logPath, stopAgent := inproc.StartAgent(t, "a", `board = "auto"
[wifi]
interface = "`+sta+`"
country = "FR"
[[wifi.network]]
ssid = "lab-agent"
psk = "agentpassword"
priority = 5
`)
	defer stopAgent()
	ctx := context.Background()
	c := client.New(socket, "cli")

	// The saved network joins by itself, and the link gets an address:
	// wait on the agent's events, not a poll.
	evCtx, evCancel := context.WithTimeout(ctx, 60*time.Second)
	defer evCancel()
	var bound time.Duration
	err := c.EventsSince(evCtx, 0, func(ev localapi.Event) error {
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
	// The lease's server and domains are in the agent's one resolv.conf
	// (no wired uplink is configured), at the Wi-Fi metric, before the
	// bound event went out.
	resolvConf := filepath.Join(filepath.Dir(socket), "resolv.conf")
	rc, err := os.ReadFile(resolvConf)
	t.Logf("%s after the Wi-Fi lease:\n%s", resolvConf, rc)
	wantRC := "# " + sta + " (wifi dhcp, metric 600): 10.78.0.53 search wifi-lab.example corp.example\nsearch wifi-lab.example corp.example\nnameserver 10.78.0.53\n"
	if err != nil || !strings.HasSuffix(string(rc), wantRC) {
		t.Errorf("resolv.conf: %v, want it to end with:\n%s", err, wantRC)
	}
	st, err := c.WiFiStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GET /api/v1/wifi: %+v link %+v", st, st.Link)
	if st.State != wifi.StateCompleted || st.SSID != "lab-agent" || !strings.HasPrefix(st.Address, "10.78.0.") || st.Link == nil {
		t.Errorf("status = %+v", st)
	}
	// [wifi] country, applied at start (FR: not the DE TestWiFiGuest set,
	// as the domain is the kernel's, for every radio).
	if st.Country != "FR" || st.CountryConfigured != "FR" {
		t.Errorf("status country %q, configured %q; want FR applied", st.Country, st.CountryConfigured)
	}

	run := func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		e := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := cli.Run(ctx, e, append(args, "--socket", socket))
		return out.String(), errb.String(), code
	}
	out, errs, code := run("", "wifi", "status")
	t.Logf("boxagent wifi status:\n%s%s", out, errs)
	if code != 0 || !strings.Contains(out, "lab-agent") || !regexp.MustCompile(`(?m)^country: +FR$`).MatchString(out) {
		t.Errorf("wifi status: exit %d, want the network and country FR", code)
	}
	// net show lists the Wi-Fi link beside the (here no) wired uplinks.
	out, errs, code = run("", "net", "show")
	t.Logf("boxagent net show:\n%s%s", out, errs)
	if row := regexp.MustCompile(`(?m)^` + sta + ` +- +- +wifi dhcp +up +10\.78\.0\.\d+/24 +ssid "lab-agent"$`); code != 0 || !row.MatchString(out) {
		t.Errorf("net show: exit %d, no up Wi-Fi row for %s", code, sta)
	}
	if v, err := c.Net(ctx); err != nil || v.WiFi == nil || !v.WiFi.Up || v.WiFi.SSID != "lab-agent" || v.WiFi.DHCP == nil || v.WiFi.DHCP.Lease == nil {
		t.Errorf("GET /api/v1/net: wifi %+v, %v", v.WiFi, err)
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
	// Forgotten: the lease's server and domains left the file.
	rc, err = os.ReadFile(resolvConf)
	t.Logf("%s after wifi forget:\n%s", resolvConf, rc)
	if err != nil || strings.Contains(string(rc), "10.78.0.53") || strings.Contains(string(rc), "wifi-lab.example") {
		t.Errorf("resolv.conf after forget: %v", err)
	}

	// The benchmark: from connect to an address on a box that
	// knows no network, the agent (CLI, D-Bus, its DHCP client) beside
	// wpa_cli + udhcpc, in the same boot, on the same radios.
	stopAgent()
	exec.Command("ip", "addr", "flush", "dev", sta).Run()
	socket, _, stopAgent = inproc.StartAgent(t, "b", "board = \"auto\"\n[wifi]\ninterface = \""+sta+"\"\n")
	defer stopAgent()
	c = client.New(socket, "cli")
	run = func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		e := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		code := cli.Run(ctx, e, append(args, "--socket", socket))
		return out.String(), errb.String(), code
	}
	// Both sides start from an empty scan cache: each pays for its scan.
	wpaCLI := func(args ...string) string {
		out, err := exec.Command("wpa_cli", append([]string{"-p", guest.WpaSupplicantCtrl, "-i", sta}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("wpa_cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	wpaCLI("bss_flush", "0")
	start = time.Now()
	out, errs, code = run("agentpassword\n", "wifi", "connect", "lab-agent", "--psk-stdin")
	joined := time.Since(start)
	if code != 0 {
		t.Fatalf("wifi connect: exit %d: %s%s", code, out, errs)
	}
	// The broker replays what it holds: the first lease after start.
	evCtx2, evCancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer evCancel2()
	var addressed time.Duration
	c.EventsSince(evCtx2, 0, func(ev localapi.Event) error {
		if ev.Type == "wifi.dhcp" && ev.Time.After(start) && strings.Contains(string(ev.Data), `"state":"bound"`) {
			addressed = ev.Time.Sub(start)
			return client.ErrStop
		}
		return nil
	})
	if addressed == 0 {
		t.Errorf("no DHCP lease after wifi connect (joined in %s)", joined)
	}
	t.Logf("BENCHMARK boxagent wifi connect: completed %s, address %s", joined.Round(time.Millisecond), addressed.Round(time.Millisecond))

	stopAgent()
	exec.Command("ip", "addr", "flush", "dev", sta).Run()
	wpa := wpaCLI
	wpa("remove_network", "all")
	wpa("bss_flush", "0")
	start = time.Now()
	id := wpa("add_network")
	wpa("set_network", id, "ssid", `"lab-agent"`)
	wpa("set_network", id, "psk", `"agentpassword"`)
	wpa("select_network", id)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(wpa("status"), "wpa_state=COMPLETED") {
		if time.Now().After(deadline) {
			t.Fatalf("wpa_cli: not completed within 30s: %s", wpa("status"))
		}
		time.Sleep(50 * time.Millisecond) // the baseline polls, as a script would
	}
	joined = time.Since(start)
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && ip addr add $ip/${mask:-24} dev $interface\nexit 0\n"), 0o755)
	if out, err := exec.Command("busybox", "udhcpc", "-i", sta, "-n", "-q", "-t", "5", "-T", "2", "-s", script).CombinedOutput(); err != nil {
		t.Fatalf("udhcpc: %v: %s", err, out)
	}
	t.Logf("BENCHMARK wpa_cli + udhcpc: completed %s, address %s", joined.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func wifiTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
