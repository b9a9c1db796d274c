package firmware

import (
	"bytes"
	"strings"
)

// uevent is one device event, as read from the NETLINK_KOBJECT_UEVENT
// socket: the kernel's (group 1), or udev's once its rules have run
// (group 2, Udev set).
type uevent struct {
	Action    string // add, remove, change, bind…
	DevPath   string // /devices/…
	Subsystem string
	DevType   string // disk, partition…
	DevName   string // sda1
	// Udev: sent by udevd after its rules ran, so the device node has its
	// owner, group and mode.
	Udev bool
}

// parseMessage decodes what the uevent socket reads: udev's message or
// the kernel's.
func parseMessage(b []byte) (uevent, bool) {
	if bytes.HasPrefix(b, udevPrefix) {
		return parseUdevMessage(b)
	}
	return parseUevent(b)
}

// parseUevent decodes a kernel message "ACTION@DEVPATH\0KEY=VALUE\0…";
// libudev's messages (they start "libudev") and malformed ones are refused.
func parseUevent(b []byte) (uevent, bool) {
	fields := bytes.Split(b, []byte{0})
	if len(fields) < 2 || !bytes.Contains(fields[0], []byte("@")) {
		return uevent{}, false
	}
	return parseProperties(fields[1:])
}

// parseProperties reads the KEY=VALUE fields both kinds of message carry.
func parseProperties(fields [][]byte) (uevent, bool) {
	var ev uevent
	for _, f := range fields {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok {
			continue
		}
		switch k {
		case "ACTION":
			ev.Action = v
		case "DEVPATH":
			ev.DevPath = v
		case "SUBSYSTEM":
			ev.Subsystem = v
		case "DEVTYPE":
			ev.DevType = v
		case "DEVNAME":
			// The kernel says "sda", udev "/dev/sda".
			ev.DevName = strings.TrimPrefix(v, "/dev/")
		}
	}
	if ev.DevName == "" && ev.DevPath != "" {
		ev.DevName = ev.DevPath[strings.LastIndexByte(ev.DevPath, '/')+1:]
	}
	return ev, ev.Action != "" && ev.DevPath != ""
}
