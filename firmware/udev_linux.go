package firmware

import "golang.org/x/sys/unix"

// udevFilter is the socket filter the uevent socket carries once it also
// listens to udev: kernel messages pass (the watcher picks in Go, as
// before), libudev messages only for block disks, so the agent is not
// woken for each of udev's other events. The hashes in the header are
// big-endian, as BPF loads words, so they compare with udevHash as is.
func udevFilter() []unix.SockFilter {
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	return []unix.SockFilter{
		ld(udevOffMagic),
		jeq(udevMagic, 1, 0),
		ret(0xffffffff), // not libudev: a kernel message
		ld(udevOffSubsystem),
		jeq(udevHash("block"), 0, 3),
		ld(udevOffDevtype),
		jeq(udevHash("disk"), 0, 1),
		ret(0xffffffff),
		ret(0),
	}
}

// attachUdevFilter installs udevFilter on socket fd.
func attachUdevFilter(fd int) error {
	f := udevFilter()
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}
