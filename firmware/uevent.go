package firmware

import (
	"bytes"
	"strings"
)

// uevent is one kernel uevent (what udev would see), as read from the
// NETLINK_KOBJECT_UEVENT socket.
type uevent struct {
	Action    string // add, remove, change, bind…
	DevPath   string // /devices/…
	Subsystem string
	DevType   string // disk, partition…
	DevName   string // sda1
}

// parseUevent decodes a kernel message "ACTION@DEVPATH\0KEY=VALUE\0…";
// libudev's messages (they start "libudev") and malformed ones are refused.
func parseUevent(b []byte) (uevent, bool) {
	fields := bytes.Split(b, []byte{0})
	if len(fields) < 2 || !bytes.Contains(fields[0], []byte("@")) {
		return uevent{}, false
	}
	var ev uevent
	for _, f := range fields[1:] {
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
			ev.DevName = v
		}
	}
	if ev.DevName == "" && ev.DevPath != "" {
		ev.DevName = ev.DevPath[strings.LastIndexByte(ev.DevPath, '/')+1:]
	}
	return ev, ev.Action != "" && ev.DevPath != ""
}
