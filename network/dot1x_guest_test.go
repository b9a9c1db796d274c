//go:build lab

package network

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestGuestDot1X: 802.1X on a real VLAN 45. The ISP's namespace runs
// hostapd (driver wired, its own EAP server) on its end of VLAN 45 and
// dnsmasq behind it; the board's system bus has wpa_supplicant (-u). The
// Manager makes dx0.45, wpa_supplicant authenticates it with PEAP/MSCHAPv2
// against a CA made here, and only then does DHCP get a lease; MD5 with a
// wrong password is refused and DHCP does not run.
func TestGuestDot1X(t *testing.T) {
	vm.RequireGuest(t)
	guest.Modprobe(t, "8021q", "veth")
	isp := guest.NewNetns(t, "isp8021x")
	guest.Veth(t, "dx0", guest.InitNS, "dxisp0", isp)
	ispVLAN := isp.AddVLAN(t, "dxisp0", 45)
	isp.Addr(t, ispVLAN, "10.45.8.1/24")
	// Not in the results share: hostapd's control socket needs a
	// filesystem that has sockets (9p has none); /run is the board's tmpfs.
	dir, err := os.MkdirTemp("/run", "dot1x-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := runAuthenticator(t, dir, ispVLAN, func(args ...string) *exec.Cmd { return isp.Command(args[0], args[1:]...) })
	// After hostapd: its wired driver listens on the DHCP port too.
	guest.StartDnsmasq(t, guest.DnsmasqConfig{NS: isp, Interface: ispVLAN, Range: "10.45.8.50,10.45.8.99,255.255.255.0,1h", NoPing: true})
	bus := guest.StartSystemBus(t)
	guest.StartWpaSupplicant(t, bus)
	m, h, events := guestManager(t, ManagerOptions{DialBus: func(context.Context) (*dbus.Conn, error) {
		return dbus.Connect(bus.Address, dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
	}})

	uplink := func(d Dot1X) Config {
		return Config{Uplinks: []Uplink{{Parent: "dx0", VLAN: ptr(45), IPv4: IPv4{Method: MethodDHCP, DefaultRoute: ptr(false)}, Dot1X: &d}}}
	}
	wait := func(state string, timeout time.Duration) Dot1XStatus {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case e := <-events:
				if e.Kind == "dot1x" && e.Dot1X.State == state {
					return *e.Dot1X
				}
				if e.Kind == "dhcp" && state != Dot1XAuthorized {
					t.Fatalf("DHCP ran before 802.1X was %s: %+v", state, e.DHCP)
				}
			case <-deadline:
				t.Fatalf("no 802.1X %s in %s (hostapd:\n%s)", state, timeout, a.logText())
			}
		}
	}

	start := time.Now()
	if _, err := m.Apply(context.Background(), uplink(Dot1X{EAP: EAPPEAP, Identity: peapUser, Password: peapPass, CACert: filepath.Join(dir, "ca.pem")})); err != nil {
		t.Fatal(err)
	}
	st := wait(Dot1XAuthorized, 60*time.Second)
	authorized := time.Since(start)
	e := waitDHCP(t, events, "dx0.45", StateBound, 30*time.Second)
	t.Logf("apply to authorized (%s on VLAN 45): %s, to bound %s: %s", st.Method, authorized.Round(time.Millisecond), e.DHCP.Lease.Address, time.Since(start).Round(time.Millisecond))
	if st.Method != "PEAP" || !strings.HasPrefix(e.DHCP.Lease.Address.String(), "10.45.8.") {
		t.Errorf("authorized %+v, lease %s", st, e.DHCP.Lease.Address)
	}
	checkVLAN(t, h, "dx0.45", 45, 0, 1500)

	// A wrong password: refused, and the DHCP client of the new uplink
	// never runs.
	start = time.Now()
	if _, err := m.Apply(context.Background(), uplink(Dot1X{EAP: EAPMD5, Identity: md5User, Password: "wrong"})); err != nil {
		t.Fatal(err)
	}
	st = wait(Dot1XFailed, 60*time.Second)
	t.Logf("apply to refused: %s: %s", time.Since(start).Round(time.Millisecond), st.Text())
	time.Sleep(3 * time.Second) // DHCP would have sent by now
	if s := m.Status()[0]; s.Up || s.DHCP == nil || s.DHCP.State != StateInit || !strings.Contains(s.Detail, "802.1X failed (MD5)") {
		t.Errorf("refused uplink: %+v (dhcp %+v)", s, s.DHCP)
	}
}
