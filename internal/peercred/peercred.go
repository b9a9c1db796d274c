// Package peercred reads who is at the other end of a unix socket
// (SO_PEERCRED, SO_PEERGROUPS): the API socket admits root, the agent's
// user and its group; a PPPoE session's socket admits root alone.
package peercred

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Of reads the peer's credentials and supplementary groups (nil groups on
// a kernel before 4.13, which has no SO_PEERGROUPS).
func Of(c *net.UnixConn) (*unix.Ucred, []uint32, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var cred *unix.Ucred
	var groups []uint32
	var serr error
	err = rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if serr != nil {
			return
		}
		buf := make([]uint32, 64)
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 {
			groups = buf[:n/4]
		}
	})
	if err == nil {
		err = serr
	}
	return cred, groups, err
}
