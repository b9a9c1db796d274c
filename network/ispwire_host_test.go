package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// An ispWire (the host tests' wire from a box to its ISP; "lab" is the
// virtual board's word) is two network namespaces joined by a veth pair: "isp" (isp0,
// 10.45.0.1/24, where dnsmasq runs) and "box" (uplink0, where the
// client runs). Everything goes away in t.Cleanup.
type ispWire struct {
	dir              string
	ispName, boxName string
	isp, box         netns.NsHandle
	hISP, hBox       *netlink.Handle
	ispLink, boxLink netlink.Link
}

const (
	boxIf = "uplink0"
	ispIf = "isp0"
)

var (
	wireSeq atomic.Int32
	boxMAC  = net.HardwareAddr{0x02, 0xb0, 0x0a, 0x00, 0x45, 0x01}
)

// needLab skips a test that cannot run here, saying why.
func needNamespaces(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: creates network namespaces and starts dnsmasq")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip (Debian package iproute2): %v", err)
	}
}

func newISPWire(t testing.TB) *ispWire {
	t.Helper()
	needNamespaces(t)
	n := wireSeq.Add(1)
	l := &ispWire{dir: t.TempDir()}
	l.ispName = fmt.Sprintf("bxa-isp-%d-%d", os.Getpid(), n)
	l.boxName = fmt.Sprintf("bxa-box-%d-%d", os.Getpid(), n)
	l.isp, l.hISP = namespace(t, l.ispName)
	l.box, l.hBox = namespace(t, l.boxName)

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: boxIf, HardwareAddr: boxMAC},
		PeerName:      ispIf,
		PeerNamespace: netlink.NsFd(l.isp),
	}
	must(t, l.hBox.LinkAdd(veth))
	var err error
	l.boxLink, err = l.hBox.LinkByName(boxIf)
	must(t, err)
	l.ispLink, err = l.hISP.LinkByName(ispIf)
	must(t, err)
	addr, _ := netlink.ParseAddr("10.45.0.1/24")
	must(t, l.hISP.AddrAdd(l.ispLink, addr))
	must(t, l.hISP.LinkSetUp(l.ispLink))
	must(t, l.hBox.LinkSetUp(l.boxLink))
	waitCarrier(t, l.box, l.boxLink)
	waitCarrier(t, l.isp, l.ispLink)
	return l
}

// waitCarrier waits until the link carries packets.
func waitCarrier(t testing.TB, ns netns.NsHandle, link netlink.Link) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := WatchCarrier(ctx, ns, link.Attrs().Index, func(up bool) {
		if up {
			cancel()
		}
	})
	if ctx.Err() == context.DeadlineExceeded || !errors.Is(err, context.Canceled) {
		t.Fatalf("no carrier on %s: %v", link.Attrs().Name, err)
	}
}

// namespace makes a named namespace (ip netns add, so that `ip netns
// exec` runs dnsmasq and udhcpc in it) and a handle bound to it.
func namespace(t testing.TB, name string) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	must(t, err)
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	must(t, err)
	t.Cleanup(h.Close)
	return ns, h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dnsmasq is a DHCP server in the wire's isp namespace that answers only
// vendor class IPTV_TEST, with 2-minute leases (its shortest).
type dnsmasq struct {
	cmd     *exec.Cmd
	records chan string // what --dhcp-script saw: "add 10.45.0.50 vendor=… clientid=…"
	*daemonLog
}

// daemonLog is a daemon's output on the wire, kept whole and followed line by
// line.
type daemonLog struct {
	name   string
	lines  chan string
	mu     sync.Mutex
	log    []string
	exited chan struct{}
}

// followLog reads cmd's output r until it ends, then waits for cmd.
func followLog(name string, cmd *exec.Cmd, r io.Reader) *daemonLog {
	d := &daemonLog{name: name, lines: make(chan string, 1000), exited: make(chan struct{})}
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			d.mu.Lock()
			d.log = append(d.log, s.Text())
			d.mu.Unlock()
			select {
			case d.lines <- s.Text():
			default:
			}
		}
		io.Copy(io.Discard, r)
		_ = cmd.Wait()
		close(d.exited)
	}()
	return d
}

func (l *ispWire) startDnsmasq(t testing.TB, extra ...string) *dnsmasq {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skipf("needs dnsmasq (Debian package dnsmasq-base): %v", err)
	}
	fifo := filepath.Join(l.dir, "script.fifo")
	must(t, unix.Mkfifo(fifo, 0o600))
	// Read-write, so the script never blocks on open and we never see EOF.
	rec, err := os.OpenFile(fifo, os.O_RDWR, 0)
	must(t, err)
	t.Cleanup(func() { rec.Close() })
	script := filepath.Join(l.dir, "script.sh")
	must(t, os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
printf '%%s %%s vendor=%%s clientid=%%s\n' "$1" "$3" "$DNSMASQ_VENDOR_CLASS" "$DNSMASQ_CLIENT_ID" >%s
`, fifo)), 0o755))

	d := &dnsmasq{records: make(chan string, 100)}
	go func() {
		s := bufio.NewScanner(rec)
		for s.Scan() {
			d.records <- s.Text()
		}
	}()
	d.cmd = exec.Command("ip", "netns", "exec", l.ispName, "dnsmasq",
		"-k", "-C", "/dev/null", "--port=0", "--interface="+ispIf, "--bind-interfaces",
		"--dhcp-range=10.45.0.50,10.45.0.99,255.255.255.0,2m",
		"--dhcp-vendorclass=set:iptv,IPTV_TEST", "--dhcp-ignore=tag:!iptv",
		"--dhcp-option=option:dns-server,10.45.0.1",
		"--dhcp-script="+script, "--script-on-renewal", "--log-dhcp", "--no-ping",
		"--dhcp-leasefile="+filepath.Join(l.dir, "leases"), "--pid-file=", "--user=root",
		"--log-facility=-")
	d.cmd.Args = append(d.cmd.Args, extra...) // further options of one test
	// Its own process group, so that killing it takes the script helper
	// it forks along.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := d.cmd.StderrPipe()
	must(t, err)
	must(t, d.cmd.Start())
	d.daemonLog = followLog("dnsmasq", d.cmd, stderr)
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("dnsmasq log:\n%s", d.logText())
		}
	})
	// Ready when it has logged its DHCP range: its socket is open.
	if _, err := d.waitLine("DHCP, IP range", 5*time.Second); err != nil {
		t.Fatalf("dnsmasq did not start: %v\n%s", err, d.logText())
	}
	return d
}

// kill ends dnsmasq and its helper and waits for it.
func (d *dnsmasq) kill() {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.exited
}

func (d *daemonLog) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.log, "\n")
}

// waitLine waits for a log line holding s.
func (d *daemonLog) waitLine(s string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case line := <-d.lines:
			if strings.Contains(line, s) {
				return line, nil
			}
		case <-d.exited:
			return "", errors.New(d.name + " exited")
		case <-deadline:
			return "", fmt.Errorf("no %s log line with %q in %s", d.name, s, timeout)
		}
	}
}

// record is the next line of the --dhcp-script.
func (d *dnsmasq) record(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case r := <-d.records:
		return r
	case <-time.After(timeout):
		t.Fatalf("dnsmasq's script recorded nothing in %s", timeout)
	}
	return ""
}

// startClient runs a DHCP client on the box end.
func (l *ispWire) startClient(t testing.TB, cfg DHCPConfig) (*DHCPClient, chan Event) {
	t.Helper()
	conn, err := OpenRawConn(l.box, l.boxLink.Attrs().Index)
	must(t, err)
	cfg.Link = boxIf
	events := make(chan Event, 1000)
	c := NewDHCPClient(l.hBox, conn, cfg, func(e Event) { events <- e })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return c, events
}

// waitState waits for an event in state s, failing on a timeout.
func waitState(t testing.TB, events chan Event, s State, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if e.State == s {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event in %s", s, timeout)
		}
	}
}

// boxAddrs is the IPv4 addresses on the box end.
func (l *ispWire) boxAddrs(t testing.TB) []netlink.Addr {
	t.Helper()
	as, err := l.hBox.AddrList(l.boxLink, netlink.FAMILY_V4)
	must(t, err)
	return as
}

// boxRoutes is the box's IPv4 routes, as "dst via gw metric m".
func (l *ispWire) boxRoutes(t testing.TB) []string {
	t.Helper()
	rs, err := l.hBox.RouteList(l.boxLink, netlink.FAMILY_V4)
	must(t, err)
	var out []string
	for _, r := range rs {
		if r.Dst == nil {
			r.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		}
		out = append(out, routeText(&r))
	}
	return out
}
