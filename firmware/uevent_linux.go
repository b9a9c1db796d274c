package firmware

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ueventBuf is the socket's receive buffer: a USB plug sends dozens of
// uevents at once, and a hub full of sticks hundreds.
const ueventBuf = 4 << 20

// ueventConn reads kernel uevents and udev's.
type ueventConn struct {
	f   *os.File
	buf []byte
}

// errOverrun means the kernel dropped uevents (ENOBUFS): rescan sysfs.
var errOverrun = errors.New("uevents were lost")

func openUevents() (*ueventConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("cannot open the uevent socket: %w", err)
	}
	// SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; without it the
	// kernel caps SO_RCVBUF at rmem_max, which is still better than the
	// default.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, ueventBuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, ueventBuf)
	}
	// The kernel's group, and udev's: udevd rebroadcasts each event once
	// its rules have given the node its group and mode, which the kernel
	// does not announce. One socket keeps the two in order (the kernel's
	// "add" before udev's). Without udevd, group 2 stays silent; where the
	// filter cannot be attached the agent follows the kernel alone rather
	// than wake for every udev event.
	groups := uint32(1)
	if attachUdevFilter(fd) == nil {
		groups |= 1 << (udevMonitorGroup - 1)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot bind the uevent socket: %w", err)
	}
	return &ueventConn{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, 64<<10)}, nil
}

// read returns the next uevent, the kernel's or udev's; errOverrun when
// some were lost, os.ErrClosed once closed.
func (c *ueventConn) read() (uevent, error) {
	for {
		n, err := c.f.Read(c.buf)
		if errors.Is(err, unix.ENOBUFS) {
			return uevent{}, errOverrun
		}
		if err != nil {
			return uevent{}, err
		}
		if ev, ok := parseMessage(c.buf[:n]); ok {
			return ev, nil
		}
	}
}

func (c *ueventConn) close() error { return c.f.Close() }

func (c *ueventConn) udevPending(majmin string) bool { return udevPending(udevRun, majmin) }
