package network

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkHostDHCPBound is the time from start to a bound lease against
// dnsmasq over a veth, for boxagent's client (in-process: open the
// socket, DISCOVER, OFFER, REQUEST, ACK, address and routes set) beside
// busybox udhcpc doing the same exchange in the same namespace (a new
// process each time, started through `ip netns exec`, configuring
// nothing: -s /bin/true). "spawn" is `ip netns exec … /bin/true`, the
// process start-up inside udhcpc's figure. Needs root.
//
//	go test -run '^$' -bench HostDHCPBound -benchtime 20x ./network
func BenchmarkHostDHCPBound(b *testing.B) {
	l := newISPWire(b)
	l.startDnsmasq(b)

	b.Run("boxagent", func(b *testing.B) {
		cfg := iptvConfig(l.dir)
		cfg.Link = boxIf
		b.ResetTimer()
		for range b.N {
			conn, err := OpenRawConn(l.box, l.boxLink.Attrs().Index)
			if err != nil {
				b.Fatal(err)
			}
			bound := make(chan Event, 1)
			c := NewDHCPClient(l.hBox, conn, cfg, func(e Event) {
				if e.State == StateBound {
					bound <- e
				}
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			select {
			case e := <-bound:
				if e.Err != nil {
					b.Fatal(e.Err)
				}
			case <-time.After(10 * time.Second):
				b.Fatal("no lease in 10 s")
			}
			b.StopTimer() // stopping the client is not part of the figure
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})

	run := func(b *testing.B, args ...string) {
		if _, err := exec.LookPath(args[0]); err != nil {
			b.Skipf("needs %s: %v", args[0], err)
		}
		for b.Loop() {
			cmd := exec.Command("ip", append([]string{"netns", "exec", l.boxName}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
		}
	}
	b.Run("udhcpc", func(b *testing.B) {
		run(b, "busybox", "udhcpc", "-B", "-n", "-q", "-V", "IPTV_TEST", "-i", boxIf, "-s", "/bin/true")
	})
	b.Run("spawn", func(b *testing.B) {
		run(b, "/bin/true")
	})
}
