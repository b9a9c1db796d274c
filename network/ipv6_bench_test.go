package network

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHostDHCPv6Lease is the time from Apply to a DHCPv6 lease
// against dnsmasq over a veth (stateful: Solicit, Advertise, Request,
// Reply, the address on the link), for boxagent's client (dhcpv6 =
// "stateful", and "auto", which first waits for the RA its router
// solicitation brings, for the M flag) beside ISC dhclient -6 doing the
// same exchange in the same namespace (a new process each time, one try,
// configuring nothing: -sf /bin/true; it waits a random 0-1 s before its
// first Solicit and collects Advertises for the first 1 s, as RFC 8415
// 18.2.1 asks; nclient6 takes the first Advertise at once). The first
// iteration of boxagent's also waits for the fresh link's link-local
// address to pass DAD (about 1.8 s here; later ones take 2-10 ms).
// Needs root.
//
//	go test -run '^$' -bench HostDHCPv6Lease -benchtime 10x ./network
func BenchmarkHostDHCPv6Lease(b *testing.B) {
	l := newISPWire(b)
	l.startDnsmasq6(b, "2001:db8:45::100,2001:db8:45::1ff,64,2m")
	m, events := newTestManager(b, l)

	ours := func(mode string) func(b *testing.B) {
		return func(b *testing.B) {
			up := ipv6Uplink(iptv6(IPv6{Method: IPv6Auto, DHCPv6: mode}))
			for b.Loop() {
				drain(events)
				if _, err := m.Apply(context.Background(), Config{Uplinks: []Uplink{up}}); err != nil {
					b.Fatal(err)
				}
				waitEvent(b, events, "dhcpv6", "lease from", 10*time.Second)
				b.StopTimer() // taking the uplink away is not part of the figure
				if _, err := m.Apply(context.Background(), Config{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		}
	}
	b.Run("boxagent-stateful", ours(DHCPv6Stateful))
	b.Run("boxagent-auto", ours(DHCPv6Auto))

	b.Run("dhclient", func(b *testing.B) {
		if _, err := exec.LookPath("dhclient"); err != nil {
			b.Skipf("needs dhclient (Debian package isc-dhcp-client): %v", err)
		}
		conf := filepath.Join(l.dir, "dhclient6.conf")
		must(b, os.WriteFile(conf, []byte("option dhcp6.vendor-class code 16 = {integer 32, integer 16, string};\n"+
			"send dhcp6.vendor-class 3561 9 \"IPTV_TEST\";\n"), 0o644))
		lf, pf := filepath.Join(l.dir, "dhclient6.leases"), filepath.Join(l.dir, "dhclient6.pid")
		for b.Loop() {
			os.Remove(lf) // else it confirms the last lease instead of soliciting
			cmd := exec.Command("ip", "netns", "exec", l.boxName, "dhclient", "-6", "-1", "-v", "-cf", conf, "-lf", lf, "-pf", pf, "-sf", "/bin/true", boxIf)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
			b.StopTimer()
			if pid, err := os.ReadFile(pf); err == nil {
				if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
					_ = syscall.Kill(n, syscall.SIGKILL)
				}
			}
			b.StartTimer()
		}
	})
}

// drain drops the events waiting.
func drain(events chan UplinkEvent) {
	for {
		select {
		case <-events:
		default:
			return
		}
	}
}
