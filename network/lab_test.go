//go:build lab

package network

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestLabNetwork boots the virtual board once and runs the TestGuest*
// tests below in it: real 802.1Q VLANs, DHCP over a VLAN, PPPoE against
// pppoe-server. Run with make test-lab (LAB_PKGS=./network).
func TestLabNetwork(t *testing.T) {
	vm.RunGoTests(t, "./network", vm.Options{Timeout: 4 * time.Minute}, "-test.run=^TestGuest")
}

// guestManager runs a Manager on the board's initial namespace, its log
// in the results share, until the test ends.
func guestManager(t *testing.T, o ManagerOptions) (*Manager, *netlink.Handle, chan UplinkEvent) {
	t.Helper()
	h, err := netlink.NewHandle()
	must(t, err)
	t.Cleanup(h.Close)
	logf, err := os.Create(filepath.Join(guest.LogDir(t), "agent.log"))
	must(t, err)
	t.Cleanup(func() { logf.Close() })
	events := make(chan UplinkEvent, 1000)
	o.Handle = h
	o.Logger = slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.OnEvent = func(e UplinkEvent) {
		select {
		case events <- e:
		default:
		}
	}
	m := NewManager(o)
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- m.Watch(ctx) }()
	t.Cleanup(func() {
		m.Close()
		cancel()
		if err := <-watched; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch: %v", err)
		}
	})
	return m, h, events
}

// TestGuestVLAN: the agent makes VLAN 45 with egress priority 6 on one
// end of a veth pair; traffic crosses it to a VLAN 45 in the ISP's
// namespace, and a capture on the ISP's trunk sees PCP 6 in the tags. A
// VLAN deleted by hand comes back; a VLAN whose uplink leaves the table
// goes.
func TestGuestVLAN(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, "8021q", "veth")
	isp := guest.NewNetns(t, "ispv")
	guest.Veth(t, "eth1", guest.InitNS, "isp0", isp)
	ispVLAN := isp.AddVLAN(t, "isp0", 45)
	isp.Addr(t, ispVLAN, "10.45.1.1/24")

	m, h, _ := guestManager(t, ManagerOptions{})
	u := Uplink{Parent: "eth1", VLAN: ptr(45), Priority: ptr(6), MTU: 1496, IPv4: IPv4{Method: MethodStatic, Address: "10.45.1.2/24"}}
	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("apply (VLAN + static address): %s", time.Since(start).Round(time.Millisecond))
	checkVLAN(t, h, "eth1.45", 45, 6, 1496)
	show := guest.InitNS.IP(t, "-d", "link", "show", "eth1.45")
	if !strings.Contains(show, "vlan protocol 802.1Q id 45") || !strings.Contains(show, "egress-qos-map { 0:6 1:6 2:6 3:6 4:6 5:6 6:6 7:6 }") {
		t.Errorf("ip -d link show eth1.45:\n%s", show)
	}
	t.Logf("ip -d link show eth1.45:\n%s", show)

	ns, err := netns.GetFromName("ispv")
	must(t, err)
	defer ns.Close()
	tags := captureTags(t, ns, "isp0")
	if err := guest.InitNS.Ping(t, "10.45.1.1", 10); err != nil {
		t.Fatal(err)
	}
	seen := tags.stop()
	if len(seen) == 0 || slices.ContainsFunc(seen, func(tci uint16) bool { return tci != 6<<13|45 }) {
		t.Errorf("tags on the trunk %04x, want all %04x (PCP 6, VID 45)", seen, 6<<13|45)
	}
	t.Logf("%d tagged frames on the ISP's trunk, TCI %04x (PCP %d, VID %d)", len(seen), seen[0], seen[0]>>13, seen[0]&0xfff)
	if vlan, err := os.ReadFile("/proc/net/vlan/eth1.45"); err == nil {
		t.Logf("/proc/net/vlan/eth1.45:\n%s", vlan)
	}

	// Deleted by hand: the link watch makes it again, address included.
	old, err := h.LinkByName("eth1.45")
	must(t, err)
	addrs := make(chan netlink.AddrUpdate, 256)
	addrsDone := make(chan struct{})
	must(t, netlink.AddrSubscribe(addrs, addrsDone))
	defer func() {
		close(addrsDone)
		for range addrs {
		}
	}()
	guest.InitNS.IP(t, "link", "del", "eth1.45")
	start = time.Now()
	deadline := time.After(10 * time.Second)
	for back := false; !back; {
		select {
		case a := <-addrs:
			back = a.NewAddr && a.LinkIndex != old.Attrs().Index && a.LinkAddress.IP.String() == "10.45.1.2"
		case <-deadline:
			t.Fatalf("eth1.45 and its address not back in 10 s")
		}
	}
	t.Logf("eth1.45 back with its address %s after it was deleted", time.Since(start).Round(time.Millisecond))
	if err := guest.InitNS.Ping(t, "10.45.1.1", 10); err != nil {
		t.Errorf("after the link came back: %v", err)
	}

	// Out of the table: gone.
	if _, err := m.Apply(context.Background(), Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("eth1.45"); err == nil {
		t.Errorf("eth1.45 still there after its uplink left the table")
	}
}

// tagCapture reads the 802.1Q tags of the frames a link receives.
type tagCapture struct {
	fd     int
	done   chan []uint16
	stopFn func() []uint16
}

// captureTags opens a packet socket on link in ns that reports each
// frame's VLAN tag (the kernel keeps it out of the frame, in the
// auxiliary data, as tcpdump reads it).
func captureTags(t *testing.T, ns netns.NsHandle, link string) *tagCapture {
	t.Helper()
	c := &tagCapture{fd: -1, done: make(chan []uint16, 1)}
	err := InNamespace(ns, func() error {
		l, err := netlink.LinkByName(link)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.Timeval{Usec: 200000}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		c.fd = fd
		return nil
	})
	must(t, err)
	stop := make(chan struct{})
	go func() {
		var tags []uint16
		buf := make([]byte, 2048)
		oob := make([]byte, 256)
		for {
			select {
			case <-stop:
				c.done <- tags
				return
			default:
			}
			n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
			if err != nil {
				continue // the receive timeout: look at stop again
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			tci, ok := frameTag(buf[:n], oob[:oobn])
			if ok {
				tags = append(tags, tci)
			}
		}
	}()
	c.stopFn = func() []uint16 {
		close(stop)
		tags := <-c.done
		unix.Close(c.fd)
		return tags
	}
	return c
}

func (c *tagCapture) stop() []uint16 { return c.stopFn() }

// frameTag is a frame's 802.1Q TCI, from the auxiliary data or, when the
// tag stayed in the frame, from its bytes.
func frameTag(frame, oob []byte) (uint16, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
				aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
				if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
					return aux.Vlan_tci, true
				}
			}
		}
	}
	if len(frame) >= 16 && frame[12] == 0x81 && frame[13] == 0x00 {
		return uint16(frame[14])<<8 | uint16(frame[15]), true
	}
	return 0, false
}

// dhcpOpt125 is the uplink's option 125 (V-I vendor-specific
// information, RFC 3925): enterprise 3561 (Broadband Forum), 6 bytes of
// data: sub-option 1, length 4, "ABCD".
const (
	dhcpOpt125        = "hex:00000de9:06:01:04:41:42:43:44"
	dhcpOpt125Match   = "00:00:0d:e9:06:01:04:41:42:43:44" // dnsmasq's hex
	dhcpOpt125Busybox = "0x7d:00000de906010441424344"      // udhcpc -x
)

// TestGuestDHCPOverVLAN: IPoE over VLAN 45 against dnsmasq answering
// only a client that sends vendor class IPTV_TEST (option 60), the
// client identifier 01 and the link's MAC (option 61) and exactly the
// uplink's option 125; then the bench figure: apply to a bound lease,
// beside busybox udhcpc -B on the same VLAN in the same run; last,
// busybox without option 125 and without option 61 gets no lease, which
// shows that dnsmasq checks both (so boxagent's lease proves it sent
// them with those values).
func TestGuestDHCPOverVLAN(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, "8021q", "veth")
	isp := guest.NewNetns(t, "ispd")
	guest.Veth(t, "eth2", guest.InitNS, "isp0", isp)
	ispVLAN := isp.AddVLAN(t, "isp0", 45)
	isp.Addr(t, ispVLAN, "10.45.2.1/24")
	eth2, err := net.InterfaceByName("eth2")
	if err != nil {
		t.Fatal(err)
	}
	// The VLAN link takes eth2's MAC: option 61 is type 1 and that MAC.
	clientID := "01:" + eth2.HardwareAddr.String()
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: ispVLAN, Range: "10.45.2.100,10.45.2.200,255.255.255.0,1h", VendorClass: "IPTV_TEST", NoPing: true,
		Extra: []string{
			"--dhcp-match=set:cid,61," + clientID, "--dhcp-ignore=tag:!cid",
			"--dhcp-match=set:viv,125," + dhcpOpt125Match, "--dhcp-ignore=tag:!viv",
		}})

	m, h, events := guestManager(t, ManagerOptions{ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"), DHCPRetransmit: time.Second})
	dhcp := Uplink{Parent: "eth2", VLAN: ptr(45), Priority: ptr(6), IPv4: IPv4{
		Method: MethodDHCP, VendorClass: "IPTV_TEST", ClientID: "mac", Options: map[string]string{"125": dhcpOpt125}, RouteMetric: 100,
	}}
	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{dhcp}}); err != nil {
		t.Fatal(err)
	}
	e := waitDHCP(t, events, "eth2.45", StateBound, 20*time.Second)
	t.Logf("first lease over VLAN 45: %s after apply: %s", time.Since(start).Round(time.Millisecond), e.DHCP)
	checkVLAN(t, h, "eth2.45", 45, 6, 1500)
	st := m.Status()
	if len(st) != 1 || !st[0].Up || st[0].DHCP.Sent["60"] != "IPTV_TEST" {
		t.Errorf("status %+v", st)
	}
	if out := guest.InitNS.IP(t, "-4", "addr", "show", "eth2.45"); !strings.Contains(out, "inet "+e.DHCP.Lease.Address.String()) {
		t.Errorf("address on eth2.45:\n%s", out)
	}
	if err := guest.InitNS.Ping(t, "10.45.2.1", 10); err != nil {
		t.Error(err)
	}

	// The bench: each round starts from a VLAN without addressing.
	off := dhcp
	off.IPv4 = IPv4{Method: MethodOff}
	var ours, theirs []time.Duration
	for range 5 {
		if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{off}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{dhcp}}); err != nil {
			t.Fatal(err)
		}
		waitDHCP(t, events, "eth2.45", StateBound, 20*time.Second)
		ours = append(ours, time.Since(start))
	}
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{off}}); err != nil {
		t.Fatal(err)
	}
	// busybox sends option 61 as 01 and the MAC unless -C.
	udhcpc := func(tries string, extra ...string) ([]byte, error) {
		args := append([]string{"udhcpc", "-B", "-V", "IPTV_TEST", "-i", "eth2.45", "-n", "-q", "-t", tries, "-T", "2", "-s", "/bin/true"}, extra...)
		return exec.Command("busybox", args...).CombinedOutput()
	}
	for range 5 {
		start := time.Now()
		if out, err := udhcpc("5", "-x", dhcpOpt125Busybox); err != nil {
			t.Fatalf("udhcpc: %v: %s", err, out)
		}
		theirs = append(theirs, time.Since(start))
	}
	t.Logf("BENCH net apply to bound lease over VLAN 45 (virtual board, TCG): boxagent median %s %v; busybox udhcpc -B median %s %v",
		median(ours), ours, median(theirs), theirs)

	// The server's checks bite: one option missing, no lease.
	for _, c := range []struct {
		what string
		args []string
	}{
		{"without option 125", nil},
		{"without option 61 (-C)", []string{"-C", "-x", dhcpOpt125Busybox}},
		{"with another option 125", []string{"-x", "0x7d:00000de906010441424345"}},
	} {
		if out, err := udhcpc("2", c.args...); err == nil {
			t.Errorf("busybox udhcpc %s got a lease: dnsmasq does not check it:\n%s", c.what, out)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}

// TestGuestPPPoE: a PPPoE session over VLAN 45 against pppoe-server:
// up with an address on the ppp link and a default route with the
// uplink's metric; the server killed and started again, pppd reconnects
// by itself; the password is in no process's argv or environment and in
// no file the client side wrote.
func TestGuestPPPoE(t *testing.T) {
	vm.RequireGuest(t)
	srv, password := guest.StartPPPoEISP(t, "ispp", "eth3")

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	m, h, events := guestManager(t, ManagerOptions{ResolvConf: resolv, PPPoE: PPPoEConfig{Holdoff: time.Second, Restart: time.Second}})
	u := Uplink{Parent: "eth3", VLAN: ptr(45), Priority: ptr(6), IPv4: IPv4{Method: MethodPPPoE, User: guest.PPPoEUser, Password: password, RouteMetric: 50}}
	start := time.Now()
	if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{u}}); err != nil {
		t.Fatal(err)
	}
	st := waitPPPoE(t, events, true, 30*time.Second)
	t.Logf("PPPoE session up %s after apply: %s %s peer %s (pppd %d)", time.Since(start).Round(time.Millisecond), st.Link, st.Address, st.Peer, st.PID)
	link, err := h.LinkByName(st.Link)
	must(t, err)
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	must(t, err)
	if len(addrs) != 1 || addrs[0].IP.String() != "10.45.0.10" {
		t.Errorf("addresses of %s: %v", st.Link, addrs)
	}
	routes := guest.InitNS.IP(t, "-4", "route", "show", "default")
	if !strings.Contains(routes, "dev "+st.Link) || !strings.Contains(routes, "metric 50") {
		t.Errorf("default route: %s", routes)
	}
	if err := guest.InitNS.Ping(t, "10.45.0.1", 10); err != nil {
		t.Error(err)
	}
	for deadline := time.After(10 * time.Second); len(st.DNS) == 0; {
		select {
		case e := <-events:
			if e.Kind == "pppoe" && e.PPPoE != nil {
				st.DNS = e.PPPoE.DNS
			}
		case <-deadline:
			t.Fatalf("no DNS server from the concentrator")
		}
	}
	if b, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(b), "nameserver 10.45.0.1\n") {
		t.Errorf("resolv.conf %q, %v", b, err)
	}
	noSecret(t, password)

	// The ISP restarts: pppd notices (LCP echoes, PADT) and dials again.
	srv.Kill(t)
	killed := time.Now()
	waitPPPoE(t, events, false, 20*time.Second)
	t.Logf("session down %s after the server was killed", time.Since(killed).Round(time.Millisecond))
	srv.Start(t)
	restarted := time.Now()
	st2 := waitPPPoE(t, events, true, 40*time.Second)
	t.Logf("session back %s after the server restarted (%s %s, connects %d, pppd %d)", time.Since(restarted).Round(time.Millisecond), st2.Link, st2.Address, st2.Connects, st2.PID)
	if st2.PID != st.PID {
		t.Errorf("pppd was restarted (%d, was %d): persist should have redialled", st2.PID, st.PID)
	}
	noSecret(t, password)

	// Out of the table: pppd ends, the VLAN goes.
	if _, err := m.Apply(context.Background(), Config{}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(st.PID, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("pppd %d still there after its uplink left: %v", st.PID, err)
	}
	if _, err := h.LinkByName("eth3.45"); err == nil {
		t.Errorf("eth3.45 still there")
	}
}

func waitPPPoE(t *testing.T, events chan UplinkEvent, up bool, timeout time.Duration) PPPoEStatus {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-events:
			if e.Kind == "pppoe" && e.PPPoE != nil && e.PPPoE.Up == up {
				return *e.PPPoE
			}
		case <-deadline:
			t.Fatalf("no PPPoE up=%v event in %s", up, timeout)
		}
	}
}

// noSecret fails t when the password shows in any process's command line
// or environment, or in a file the box side may have written (the ISP's
// chap-secrets excepted).
func noSecret(t *testing.T, password string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join(p, f)); err == nil && strings.Contains(string(b), password) {
				t.Errorf("the password is in %s/%s: %q", p, f, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	out, err := exec.Command("ps", "-eo", "pid,args").CombinedOutput()
	if err == nil && strings.Contains(string(out), password) {
		t.Errorf("ps shows the password:\n%s", out)
	}
	isp := map[string]bool{"/etc/ppp/chap-secrets": true, "/etc/ppp/pap-secrets": true}
	n := 0
	for _, dir := range []string{"/tmp", "/run", "/var/tmp", "/var/log", "/var/run", "/etc/ppp", "/etc/boxagent", guest.LogDir(t)} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() || isp[path] {
				return nil
			}
			n++
			if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), password) {
				t.Errorf("the password is in the file %s", path)
			}
			return nil
		})
	}
	t.Logf("password in no argv, environment or file (%d processes, %d files searched)", len(procs), n)
}
