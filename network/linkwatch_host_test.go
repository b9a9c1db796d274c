package network

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lockedBuffer is a log sink the watch and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestHostWatchForeignSender: another netlink subscriber in the namespace
// that sends to the link group (any root process can) made the watch
// subscribe again on every message it sent, with no pause: both spun at
// ~2.6 k log lines a second. The watch ignores messages not from the
// kernel, backs off between subscriptions, and still sees the kernel's.
func TestHostWatchForeignSender(t *testing.T) {
	l := newISPWire(t)
	logs := &lockedBuffer{}
	m := NewManager(ManagerOptions{Handle: l.hBox, Namespace: &l.box,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch: %v", err)
		}
	}()
	time.Sleep(100 * time.Millisecond)

	// The second subscriber: a netlink socket in the box's namespace,
	// joined to the link group, sending link messages to the group.
	var fd int
	must(t, InNamespace(l.box, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)})
	}))
	defer unix.Close(fd)
	msg := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_NEWLINK)
	group := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}
	const window = time.Second
	sent := 0
	for start := time.Now(); time.Since(start) < window; sent++ {
		if err := unix.Sendto(fd, msg, 0, group); err != nil {
			t.Fatalf("sendto the link group: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	n := logs.count("link watch")
	t.Logf("%d foreign messages in %s: %d link watch log lines", sent, window, n)
	if n > 3 {
		t.Errorf("%d link watch log lines for %d foreign messages in %s, want at most 3:\n%s", n, sent, window, tail(logs, 5))
	}
}

func tail(l *lockedBuffer, n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(l.b.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
