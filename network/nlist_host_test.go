package network

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestHostWatchesListQuietly: the agent's watches list what exists
// without waking anyone else. A bystander subscribed to the namespace's
// link, address and route groups (as NetworkManager or networkd would
// be) hears no message from a process, only the kernel's, while the
// carrier, address and route watches start there. With the library's
// ListExisting each start sent its dump request to the group.
func TestHostWatchesListQuietly(t *testing.T) {
	l := newISPWire(t)
	var fd int
	must(t, InNamespace(l.box, func() (err error) {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		groups := uint32(1<<(unix.RTNLGRP_LINK-1) | 1<<(unix.RTNLGRP_IPV4_IFADDR-1) | 1<<(unix.RTNLGRP_IPV6_IFADDR-1) | 1<<(unix.RTNLGRP_IPV6_ROUTE-1))
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups})
	}))
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(500 * time.Millisecond))
	must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	carrier := make(chan bool, 4)
	go WatchCarrier(ctx, l.box, l.boxLink.Attrs().Index, func(up bool) { carrier <- up })
	addrs := make(chan netlink.AddrUpdate, 64)
	go follow(ctx, l.box, "address changes", func(ch chan netlink.AddrUpdate, done chan struct{}, onErr func(error)) error {
		return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{ErrorCallback: onErr})
	}, existingAddrs, func(u netlink.AddrUpdate) { addrs <- u })
	routes := make(chan netlink.RouteUpdate, 64)
	go follow(ctx, l.box, "route changes", func(ch chan netlink.RouteUpdate, done chan struct{}, onErr func(error)) error {
		return netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{ErrorCallback: onErr})
	}, existingRoutes, func(u netlink.RouteUpdate) { routes <- u })

	// Each watch is handed what exists: the carrier, the box end's
	// link-local address, its fe80::/64 route.
	select {
	case up := <-carrier:
		if !up {
			t.Error("carrier listed down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the carrier watch listed nothing")
	}
	box := l.boxLink.Attrs().Index
	for what, ch := range map[string]func() bool{
		"address": func() bool { u := <-addrs; return u.LinkIndex == box && u.NewAddr },
		"route":   func() bool { u := <-routes; return u.LinkIndex == box },
	} {
		deadline := time.After(5 * time.Second)
	wait:
		for {
			got := make(chan bool, 1)
			go func() { got <- ch() }()
			select {
			case ok := <-got:
				if ok {
					break wait
				}
			case <-deadline:
				t.Fatalf("the %s watch listed nothing of the box end", what)
			}
		}
	}

	// What the bystander heard meanwhile.
	buf := make([]byte, 1<<16)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		must(t, err)
		sa, _ := from.(*unix.SockaddrNetlink)
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		must(t, err)
		for _, m := range msgs {
			if sa != nil && sa.Pid != 0 {
				t.Errorf("a bystander on the groups heard message type %d from process port %d", m.Header.Type, sa.Pid)
			}
		}
	}
}
