package firmware

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// udevd rebroadcasts each device event on the uevent netlink socket's
// group 2 once its rules have run, as a "libudev" message: a header, then
// the properties as KEY=VALUE\0 (systemd's sd-device/device-monitor.c,
// monitor_netlink_header):
//
//	 0  prefix[8]              "libudev\0"
//	 8  magic                  0xfeedcafe, big-endian
//	12  header_size            host order
//	16  properties_off         host order
//	20  properties_len         host order
//	24  filter_subsystem_hash  MurmurHash2 of SUBSYSTEM, big-endian
//	28  filter_devtype_hash    MurmurHash2 of DEVTYPE, big-endian
//	32  filter_tag_bloom_hi, 36 filter_tag_bloom_lo
const (
	udevMonitorGroup = 2
	udevMagic        = 0xfeedcafe
	udevOffMagic     = 8
	udevOffSubsystem = 24
	udevOffDevtype   = 28
	// udevMinHeader is what parseUdevMessage reads of the header.
	udevMinHeader = 24
)

var udevPrefix = []byte("libudev\x00")

// parseUdevMessage decodes a libudev message; kernel messages and
// malformed ones are refused.
func parseUdevMessage(b []byte) (uevent, bool) {
	if len(b) < udevMinHeader || !bytes.HasPrefix(b, udevPrefix) || binary.BigEndian.Uint32(b[udevOffMagic:]) != udevMagic {
		return uevent{}, false
	}
	off := uint64(binary.NativeEndian.Uint32(b[16:]))
	n := uint64(binary.NativeEndian.Uint32(b[20:]))
	if off < udevMinHeader || n == 0 || off+n > uint64(len(b)) {
		return uevent{}, false
	}
	ev, ok := parseProperties(bytes.Split(b[off:off+n], []byte{0}))
	ev.Udev = true
	return ev, ok
}

// udevHash is udev's string_hash32: MurmurHash2 with seed 0, reading the
// words in host order as the C code does (udevd and the agent share the
// host, so they agree).
func udevHash(s string) uint32 {
	const m, r = 0x5bd1e995, 24
	b := []byte(s)
	h := uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		k := binary.NativeEndian.Uint32(b)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// udevRun is udevd's runtime folder: its control socket says it runs, its
// database holds one file per device it has finished with.
const udevRun = "/run/udev"

// udevPending says whether udevd runs and has not yet finished with the
// block device majmin ("8:16"): its database file b8:16 is written
// before udevd broadcasts the device (what libudev's is_initialized
// reads). Without udevd nothing will change the node's permissions.
func udevPending(run, majmin string) bool {
	if _, err := os.Stat(filepath.Join(run, "control")); err != nil || majmin == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(run, "data", "b"+majmin))
	return errors.Is(err, fs.ErrNotExist)
}
