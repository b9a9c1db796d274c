package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/network"
)

// netnsEnv, set for a daemon started by these tests, makes the test
// binary run it inside that network namespace: `ip netns exec` puts the
// whole process there (a setns of Go's main thread alone would leave
// its other threads, and the netlink sockets they open, outside).
const netnsEnv = "BOXAGENT_TEST_NETNS"

func init() {
	ns := os.Getenv(netnsEnv)
	if ns == "" || os.Getenv("BOXAGENT_AS_MAIN") != "1" {
		return
	}
	os.Unsetenv(netnsEnv)
	ip, err := exec.LookPath("ip")
	if err == nil {
		err = syscall.Exec(ip, append([]string{"ip", "netns", "exec", ns, os.Args[0]}, os.Args[1:]...), os.Environ())
	}
	fmt.Fprintf(os.Stderr, "cannot enter network namespace %s: %v\n", ns, err)
	os.Exit(1)
}

// ispWire is a "box" namespace where the daemon runs, with uplink0 and
// uplink1, and an "isp" namespace at their other ends (isp0 10.45.0.1,
// isp1 10.46.0.1), each end served by a dnsmasq of its own.
type ispWire struct {
	box, isp string
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}

func newISPWire(t *testing.T) *ispWire {
	t.Helper()
	requireProcesses(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and veth pairs")
	}
	for _, p := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
	l := &ispWire{box: fmt.Sprintf("bxr-box-%d", os.Getpid()), isp: fmt.Sprintf("bxr-isp-%d", os.Getpid())}
	for _, ns := range []string{l.box, l.isp} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh(t, "ip", "-n", l.box, "link", "set", "lo", "up") // the daemon's 127.0.0.1 listener
	for i, net := range []string{"10.45.0", "10.46.0"} {
		up, isp := fmt.Sprintf("uplink%d", i), fmt.Sprintf("isp%d", i)
		sh(t, "ip", "-n", l.box, "link", "add", up, "type", "veth", "peer", "name", isp, "netns", l.isp)
		sh(t, "ip", "-n", l.isp, "addr", "add", net+".1/24", "dev", isp)
		sh(t, "ip", "-n", l.isp, "link", "set", isp, "up")
		sh(t, "ip", "-n", l.box, "link", "set", up, "up")
	}
	return l
}

// dnsmasq serves DHCP on isp<i> with a DNS server and a domain name.
func (l *ispWire) dnsmasq(t *testing.T, i int, net, dns, domain string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"netns", "exec", l.isp, "dnsmasq", "-k", "-C", "/dev/null", "--port=0",
		fmt.Sprintf("--interface=isp%d", i), "--bind-interfaces",
		fmt.Sprintf("--dhcp-range=%s.50,%s.99,255.255.255.0,2m", net, net),
		"--dhcp-option=option:dns-server," + dns, "--dhcp-option=option:domain-name," + domain,
		"--no-ping", "--dhcp-leasefile=" + filepath.Join(dir, "leases"), "--pid-file=", "--user=root", "--log-facility=-"}, extra...)
	cmd := exec.Command("ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	// Ready when it has logged its DHCP range: its socket is open.
	ready := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if strings.Contains(s.Text(), "DHCP, IP range") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("dnsmasq exited before it served")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dnsmasq did not start")
	}
}

// eventStream follows the daemon's events from the first it holds.
func eventStream(t *testing.T, p *agentProc) chan apitype.Event {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan apitype.Event, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.client().EventsSince(ctx, 0, func(e apitype.Event) error {
			ch <- e
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// waitNet waits for a "net" event of link that match says is the one.
func waitNet(t *testing.T, ch chan apitype.Event, what string, match func(network.UplinkEvent) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-ch:
			var u network.UplinkEvent
			if e.Type == "net" && json.Unmarshal(e.Data, &u) == nil && match(u) {
				return
			}
		case <-deadline:
			t.Fatalf("no net event: %s", what)
		}
	}
}

func bound(link string) func(network.UplinkEvent) bool {
	return func(u network.UplinkEvent) bool {
		return u.Uplink == link && u.Kind == "dhcp" && u.DHCP != nil && u.DHCP.State == network.StateBound
	}
}

// TestNetReapplyJournalledAndOneResolvConf runs the daemon in a network
// namespace with two DHCP uplinks served by real dnsmasq: both leases'
// DNS servers and domains land in one resolv.conf, lower metric first; a
// carrier flap takes the flapping uplink's servers out and back, and the
// link watch's renewal on carrier return is a journalled operation
// (net.reapply, origin auto, trigger link-watch, with its snapshot) that
// went out as events; an uplink removed takes its servers along.
func TestNetReapplyJournalledAndOneResolvConf(t *testing.T) {
	l := newISPWire(t)
	l.dnsmasq(t, 0, "10.45.0", "10.45.0.1", "iptv.example")
	l.dnsmasq(t, 1, "10.46.0", "10.46.0.1", "inet.example")
	root := t.TempDir()
	writeConfig(t, root, `board = "generic-x86_64"
[[network.uplink]]
parent = "uplink0"
[network.uplink.ipv4]
method = "dhcp"
route_metric = 100

[[network.uplink]]
parent = "uplink1"
[network.uplink.ipv4]
method = "dhcp"
route_metric = 50
`)
	p := startAgentEnv(t, root, []string{netnsEnv + "=" + l.box})
	events := eventStream(t, p)
	resolv := filepath.Join(root, "run/boxagent/resolv.conf")
	tail := func() string {
		t.Helper()
		b, err := os.ReadFile(resolv)
		if err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(string(b), "\nsearch ")
		if after == "" {
			_, after, _ = strings.Cut(string(b), "\nnameserver ")
			if after != "" {
				after = "nameserver " + after
			}
		} else {
			after = "search " + after
		}
		return after
	}

	left := map[string]bool{"uplink0": true, "uplink1": true}
	waitNet(t, events, "both uplinks bound", func(u network.UplinkEvent) bool {
		if bound(u.Uplink)(u) {
			delete(left, u.Uplink)
		}
		return len(left) == 0
	})
	both := "search inet.example iptv.example\nnameserver 10.46.0.1\nnameserver 10.45.0.1\n"
	if got := tail(); got != both {
		b, _ := os.ReadFile(resolv)
		t.Fatalf("resolv.conf with both uplinks:\n%s", b)
	}

	// Carrier flap on uplink0: its server leaves while the carrier is gone.
	sh(t, "ip", "-n", l.isp, "link", "set", "isp0", "down")
	waitNet(t, events, "carrier down on uplink0", func(u network.UplinkEvent) bool {
		return u.Uplink == "uplink0" && u.Kind == "link" && u.Detail == "carrier down"
	})
	if got := tail(); got != "search inet.example\nnameserver 10.46.0.1\n" {
		t.Errorf("resolv.conf without uplink0's carrier:\n%s", got)
	}
	sh(t, "ip", "-n", l.isp, "link", "set", "isp0", "up")
	// The re-apply's renewal may be bound before the operation's end
	// is reported: both are waited for together.
	var opID uint64
	rebound := false
	deadline := time.After(60 * time.Second)
	for opID == 0 || !rebound {
		select {
		case e := <-events:
			var oe apitype.OperationEvent
			var u network.UplinkEvent
			switch {
			case e.Type == "operation" && json.Unmarshal(e.Data, &oe) == nil && oe.Kind == "net.reapply" && oe.State.Final():
				if oe.State != journal.StateDone {
					t.Fatalf("net.reapply ended %s: %+v", oe.State, oe.Error)
				}
				opID = oe.ID
			case e.Type == "net" && json.Unmarshal(e.Data, &u) == nil && bound("uplink0")(u):
				rebound = true
			}
		case <-deadline:
			t.Fatalf("after the carrier returned: net.reapply operation %d, uplink0 bound again %v", opID, rebound)
		}
	}
	if got := tail(); got != both {
		t.Errorf("resolv.conf after the carrier returned:\n%s", got)
	}

	op, err := p.client().Operation(context.Background(), opID)
	if err != nil {
		t.Fatal(err)
	}
	var req network.Reapply
	var res network.ReapplyResult
	json.Unmarshal(op.Request, &req)
	json.Unmarshal(op.Result, &res)
	if op.Origin != journal.OriginAuto || req.Trigger != network.TriggerLinkWatch || !strings.Contains(req.Reason, "carrier up on uplink0") ||
		strings.Join(res.Renewed, ",") != "uplink0" || !strings.HasPrefix(op.Snapshot.Revision, "sha256:") || len(op.Snapshot.Config) == 0 {
		t.Errorf("journalled re-apply: %+v\nrequest %s\nresult %s", op, op.Request, op.Result)
	}
	out, stderr, code := p.run("history", "--kind", "net.reapply")
	if code != 0 || !strings.Contains(out, "link-watch: carrier up on uplink0") {
		t.Errorf("history --kind net.reapply: exit %d\n%s%s", code, out, stderr)
	}

	// An uplink removed takes its servers along.
	if _, stderr, code := p.run("net", "uplink", "del", "uplink1"); code != 0 {
		t.Fatalf("net uplink del: exit %d: %s", code, stderr)
	}
	if got := tail(); got != "search iptv.example\nnameserver 10.45.0.1\n" {
		t.Errorf("resolv.conf after uplink1 left:\n%s", got)
	}
}

// TestNetUplinkAddNoDefaultRoute: an uplink added from the command line
// with --no-default-route and --route, as an IPTV VLAN beside the
// internet uplink, binds a lease whose router dnsmasq names, and the box's
// kernel has its prefix and static routes on the link but no default
// route.
func TestNetUplinkAddNoDefaultRoute(t *testing.T) {
	l := newISPWire(t)
	l.dnsmasq(t, 0, "10.45.0", "10.45.0.1", "iptv.example")
	root := t.TempDir()
	writeConfig(t, root, "board = \"generic-x86_64\"\n")
	p := startAgentEnv(t, root, []string{netnsEnv + "=" + l.box})
	events := eventStream(t, p)

	out, stderr, code := p.run("net", "uplink", "add", "--parent", "uplink0", "--route-metric", "300", "--no-default-route",
		"--route", "239.0.0.0/8", "--route", "10.99.0.0/16 via 10.45.0.1")
	if code != 0 {
		t.Fatalf("net uplink add: exit %d\n%s%s", code, out, stderr)
	}
	waitNet(t, events, "uplink0 bound", bound("uplink0"))
	v, err := p.client().Net(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Uplinks) != 1 || v.Uplinks[0].DHCP == nil || v.Uplinks[0].DHCP.Lease == nil || v.Uplinks[0].DHCP.Lease.Router.String() != "10.45.0.1" {
		t.Fatalf("the lease names no router, so no default route is no proof: %+v", v.Uplinks)
	}

	// The static routes follow the lease, with the uplink's metric.
	want := []string{"10.99.0.0/16 via 10.45.0.1 proto dhcp src 10.45.0.", "239.0.0.0/8 proto dhcp scope link src 10.45.0."}
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, err := exec.Command("ip", "-n", l.box, "-4", "route", "show", "dev", "uplink0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route: %v: %s", err, b)
		}
		got = string(b)
		if strings.Contains(got, want[0]) && strings.Contains(got, want[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("routes on uplink0:\n%swant %q", got, want)
		}
	}
	if !strings.Contains(got, " metric 300") {
		t.Errorf("routes on uplink0 without the uplink's metric:\n%s", got)
	}
	if b, _ := exec.Command("ip", "-n", l.box, "-4", "route", "show", "default").CombinedOutput(); len(strings.TrimSpace(string(b))) > 0 {
		t.Errorf("a default route in the box: %s", b)
	}
}
