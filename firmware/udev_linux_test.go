package firmware

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUdevFilter runs the socket filter in the kernel, on a datagram
// socket pair (the uevent socket needs the host's udevd): kernel messages
// pass, udev's only for block disks.
func TestUdevFilter(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := attachUdevFilter(fds[1]); err != nil {
		t.Fatalf("attach: %v", err)
	}
	tests := []struct {
		name string
		msg  []byte
		pass bool
	}{
		{"kernel", []byte("add@/devices/x/block/sdb\x00ACTION=add\x00DEVPATH=/devices/x/block/sdb\x00SUBSYSTEM=block\x00"), true},
		{"udev block disk", udevMessage(stickDiskProps, nil), true},
		{"udev block partition", udevMessage("ACTION=add\x00DEVPATH=/devices/x/block/sdb/sdb1\x00SUBSYSTEM=block\x00DEVTYPE=partition\x00", nil), false},
		{"udev usb device", udevMessage("ACTION=add\x00DEVPATH=/devices/x/usb2/2-1\x00SUBSYSTEM=usb\x00DEVTYPE=usb_device\x00", nil), false},
		{"udev scsi, no devtype", udevMessage("ACTION=add\x00DEVPATH=/devices/x/host2\x00SUBSYSTEM=scsi\x00", nil), false},
	}
	if captured, _ := hex.DecodeString(capturedStickAdd); binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		// Its hashes are udevd's own.
		tests = append(tests, struct {
			name string
			msg  []byte
			pass bool
		}{"captured from udevd", captured, true})
	}
	buf := make([]byte, 4096)
	for _, tt := range tests {
		if _, err := unix.Write(fds[0], tt.msg); err != nil {
			t.Fatalf("%s: write: %v", tt.name, err)
		}
		// The filter runs in the sender's write: what it drops never
		// reaches the queue, so a non-blocking read answers now.
		n, _, err := unix.Recvfrom(fds[1], buf, unix.MSG_DONTWAIT)
		switch {
		case tt.pass && err != nil:
			t.Errorf("%s: dropped (%v), want passed", tt.name, err)
		case tt.pass && string(buf[:n]) != string(tt.msg):
			t.Errorf("%s: received %q", tt.name, buf[:n])
		case !tt.pass && !errors.Is(err, unix.EAGAIN):
			t.Errorf("%s: passed (%d bytes, %v), want dropped", tt.name, n, err)
		}
	}
}
