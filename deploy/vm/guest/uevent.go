package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Uevent is a kernel uevent (what udev would see).
type Uevent struct {
	Action    string // add, remove, change, bind…
	DevPath   string // /devices/…
	Subsystem string
	DevType   string // disk, partition, usb_device…
	DevName   string // sda1 (under /dev)
	Env       map[string]string
}

// Uevents reads kernel uevents from a netlink socket. There is no udevd in
// the guest; devtmpfs has made the /dev node by the time an add arrives.
type Uevents struct {
	f   *os.File
	buf []byte
}

// OpenUevents subscribes to kernel uevents. Open it before causing the
// event you wait for.
func OpenUevents() (*Uevents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("cannot open the uevent socket: %w", err)
	}
	// A burst of events (a USB plug sends dozens) must not overflow it.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot bind the uevent socket: %w", err)
	}
	return &Uevents{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, 64*1024)}, nil
}

// Close closes the socket.
func (u *Uevents) Close() error { return u.f.Close() }

// Read returns the next uevent, or an error when ctx is done.
func (u *Uevents) Read(ctx context.Context) (Uevent, error) {
	dl, _ := ctx.Deadline()
	u.f.SetReadDeadline(dl)
	stop := context.AfterFunc(ctx, func() { u.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		n, err := u.f.Read(u.buf)
		if err != nil {
			if ctx.Err() != nil {
				return Uevent{}, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// ctx's deadline, reached by the poller before ctx's timer
				return Uevent{}, context.DeadlineExceeded
			}
			return Uevent{}, fmt.Errorf("cannot read uevents: %w", err)
		}
		if ev, ok := parseUevent(u.buf[:n]); ok {
			return ev, nil
		}
	}
}

// Wait returns the first uevent that satisfies match.
func (u *Uevents) Wait(ctx context.Context, match func(Uevent) bool) (Uevent, error) {
	for {
		ev, err := u.Read(ctx)
		if err != nil {
			return ev, err
		}
		if match(ev) {
			return ev, nil
		}
	}
}

// parseUevent decodes "ACTION@DEVPATH\0KEY=VALUE\0…".
func parseUevent(b []byte) (Uevent, bool) {
	fields := bytes.Split(b, []byte{0})
	if len(fields) < 2 || !bytes.Contains(fields[0], []byte("@")) {
		return Uevent{}, false // not from the kernel (libudev) or malformed
	}
	ev := Uevent{Env: map[string]string{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if ok {
			ev.Env[k] = v
		}
	}
	ev.Action, ev.DevPath = ev.Env["ACTION"], ev.Env["DEVPATH"]
	ev.Subsystem, ev.DevType, ev.DevName = ev.Env["SUBSYSTEM"], ev.Env["DEVTYPE"], ev.Env["DEVNAME"]
	return ev, ev.Action != ""
}
