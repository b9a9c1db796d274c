package firmware

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// udevMessage lays out a libudev message as udevd sends it
// (monitor_netlink_header, 40 bytes, then the properties); mangle may
// spoil the header before it is returned.
func udevMessage(props string, mangle func(h []byte)) []byte {
	h := make([]byte, 40)
	copy(h, "libudev\x00")
	binary.BigEndian.PutUint32(h[8:], udevMagic)
	binary.NativeEndian.PutUint32(h[12:], 40)
	binary.NativeEndian.PutUint32(h[16:], 40)
	binary.NativeEndian.PutUint32(h[20:], uint32(len(props)))
	fields := bytes.Split([]byte(props), []byte{0})
	for _, f := range fields {
		if v, ok := bytes.CutPrefix(f, []byte("SUBSYSTEM=")); ok {
			binary.BigEndian.PutUint32(h[24:], udevHash(string(v)))
		}
		if v, ok := bytes.CutPrefix(f, []byte("DEVTYPE=")); ok {
			binary.BigEndian.PutUint32(h[28:], udevHash(string(v)))
		}
	}
	if mangle != nil {
		mangle(h)
	}
	return append(h, props...)
}

// Properties modelled on what udevd sends for a USB stick's disk,
// shortened; the lab (TestLabSystemd) runs the parser against a real
// udevd.
const stickDiskProps = "ACTION=add\x00" +
	"DEVPATH=/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb\x00" +
	"SUBSYSTEM=block\x00DEVNAME=/dev/sdb\x00DEVTYPE=disk\x00DISKSEQ=9\x00SEQNUM=2112\x00" +
	"USEC_INITIALIZED=81234567\x00ID_BUS=usb\x00ID_SERIAL=QEMU_QEMU_HARDDISK_1-0000:00:04.0-1-0:0\x00" +
	"DEVLINKS=/dev/disk/by-id/usb-QEMU_QEMU_HARDDISK_1-0000:00:04.0-1-0:0\x00TAGS=:systemd:\x00CURRENT_TAGS=:systemd:\x00"

// capturedStickAdd is udevd's "add" for a USB stick's disk as the agent
// received it on the systemd board (TestLabSystemd's
// StickPluggedWhileRunning logs it), little-endian.
const capturedStickAdd = "" +
	"6c69627564657600feedcafe2800000028000000d2040000f0031db77bcbc5ee0200040010800000554445565f444154" +
	"41424153455f56455253494f4e3d3100414354494f4e3d61646400444556504154483d2f646576696365732f70636930" +
	"3030303a30302f303030303a30303a30332e302f757362322f322d322f322d323a312e302f686f7374302f7461726765" +
	"74303a303a302f303a303a303a302f626c6f636b2f7364610053554253595354454d3d626c6f636b004445564e414d45" +
	"3d2f6465762f73646100444556545950453d6469736b004449534b5345513d34005345514e554d3d3737370055534543" +
	"5f494e495449414c495a45443d313334363935393230004d414a4f523d38004d494e4f523d300049445f4255533d7573" +
	"620049445f4d4f44454c3d51454d555f484152444449534b0049445f4d4f44454c5f454e433d51454d555c7832304841" +
	"52444449534b5c7832305c7832305c7832300049445f4d4f44454c5f49443d303030310049445f53455249414c3d5145" +
	"4d555f51454d555f484152444449534b5f4c4142737469636b2d303a300049445f53455249414c5f53484f52543d4c41" +
	"42737469636b0049445f56454e444f523d51454d550049445f56454e444f525f454e433d51454d555c7832305c783230" +
	"5c7832305c7832300049445f56454e444f525f49443d343666340049445f5245564953494f4e3d322e352b0049445f54" +
	"5950453d6469736b0049445f494e5354414e43453d303a300049445f5553425f4d4f44454c3d51454d555f4841524444" +
	"49534b0049445f5553425f4d4f44454c5f454e433d51454d555c783230484152444449534b5c7832305c7832305c7832" +
	"300049445f5553425f4d4f44454c5f49443d303030310049445f5553425f53455249414c3d51454d555f51454d555f48" +
	"4152444449534b5f4c4142737469636b2d303a300049445f5553425f53455249414c5f53484f52543d4c414273746963" +
	"6b0049445f5553425f56454e444f523d51454d550049445f5553425f56454e444f525f454e433d51454d555c7832305c" +
	"7832305c7832305c7832300049445f5553425f56454e444f525f49443d343666340049445f5553425f5245564953494f" +
	"4e3d322e352b0049445f5553425f545950453d6469736b0049445f5553425f494e5354414e43453d303a300049445f55" +
	"53425f494e54455246414345533d3a3038303635303a0049445f5553425f494e544552464143455f4e554d3d30300049" +
	"445f5553425f4452495645523d7573622d73746f72616765004445564c494e4b533d2f6465762f6469736b2f62792d69" +
	"642f7573622d51454d555f51454d555f484152444449534b5f4c4142737469636b2d303a30202f6465762f6469736b2f" +
	"62792d6469736b7365712f34202f6465762f6469736b2f62792d706174682f7063692d303030303a30303a30332e302d" +
	"7573622d303a323a312e302d736373692d303a303a303a300049445f504154483d7063692d303030303a30303a30332e" +
	"302d7573622d303a323a312e302d736373692d303a303a303a300049445f504154485f5441473d7063692d303030305f" +
	"30305f30335f302d7573622d305f325f315f302d736373692d305f305f305f300049445f504152545f5441424c455f55" +
	"5549443d31616230633561310049445f504152545f5441424c455f545950453d646f7300544147533d3a73797374656d" +
	"643a0043555252454e545f544147533d3a73797374656d643a00"

func TestParseUdevMessage(t *testing.T) {
	const devpath = "/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb"
	stick := uevent{Udev: true, Action: "add", DevPath: devpath, Subsystem: "block", DevType: "disk", DevName: "sdb"}
	tests := []struct {
		name string
		msg  []byte
		want uevent
		ok   bool
	}{
		{"a stick's disk", udevMessage(stickDiskProps, nil), stick, true},
		{"change of a partition", udevMessage("ACTION=change\x00DEVPATH="+devpath+"/sdb1\x00SUBSYSTEM=block\x00DEVTYPE=partition\x00DEVNAME=/dev/sdb1\x00", nil),
			uevent{Udev: true, Action: "change", DevPath: devpath + "/sdb1", Subsystem: "block", DevType: "partition", DevName: "sdb1"}, true},
		{"a longer header (a newer udevd)", append(udevMessage("", func(h []byte) {
			binary.NativeEndian.PutUint32(h[12:], 48)
			binary.NativeEndian.PutUint32(h[16:], 48)
			binary.NativeEndian.PutUint32(h[20:], uint32(len(stickDiskProps)))
		}), append(make([]byte, 8), stickDiskProps...)...), stick, true},
		{"no ACTION", udevMessage("DEVPATH=/devices/x\x00SUBSYSTEM=block\x00", nil), uevent{}, false},
		{"wrong magic", udevMessage(stickDiskProps, func(h []byte) { binary.BigEndian.PutUint32(h[8:], 0xfeedcafd) }), uevent{}, false},
		{"magic in host order", udevMessage(stickDiskProps, func(h []byte) { binary.LittleEndian.PutUint32(h[8:], udevMagic) }), uevent{}, false},
		{"properties past the end", udevMessage(stickDiskProps, func(h []byte) { binary.NativeEndian.PutUint32(h[20:], uint32(len(stickDiskProps)+1)) }), uevent{}, false},
		{"offset past the end", udevMessage(stickDiskProps, func(h []byte) { binary.NativeEndian.PutUint32(h[16:], 1<<31) }), uevent{}, false},
		{"offset and length wrapping", udevMessage(stickDiskProps, func(h []byte) {
			binary.NativeEndian.PutUint32(h[16:], 0xffffffff)
			binary.NativeEndian.PutUint32(h[20:], 41)
		}), uevent{}, false},
		{"offset inside the header", udevMessage(stickDiskProps, func(h []byte) { binary.NativeEndian.PutUint32(h[16:], 8) }), uevent{}, false},
		{"no properties", udevMessage("", nil), uevent{}, false},
		{"header cut short", udevMessage(stickDiskProps, nil)[:20], uevent{}, false},
		{"a kernel message", []byte("add@" + devpath + "\x00ACTION=add\x00DEVPATH=" + devpath + "\x00SUBSYSTEM=block\x00DEVTYPE=disk\x00DEVNAME=sdb\x00"), uevent{}, false},
		{"empty", nil, uevent{}, false},
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		captured, _ := hex.DecodeString(capturedStickAdd)
		tests = append(tests, struct {
			name string
			msg  []byte
			want uevent
			ok   bool
		}{"captured from udevd", captured, uevent{Udev: true, Action: "add", Subsystem: "block", DevType: "disk", DevName: "sda",
			DevPath: "/devices/pci0000:00/0000:00:03.0/usb2/2-2/2-2:1.0/host0/target0:0:0/0:0:0:0/block/sda"}, true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseUdevMessage(tt.msg)
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("parseUdevMessage = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestParseMessage: the socket reads both kinds, told apart by the
// prefix.
func TestParseMessage(t *testing.T) {
	if ev, ok := parseMessage(udevMessage(stickDiskProps, nil)); !ok || !ev.Udev || ev.DevName != "sdb" {
		t.Errorf("udev's message: %+v, %v", ev, ok)
	}
	if ev, ok := parseMessage([]byte("add@/devices/x/block/sda\x00ACTION=add\x00DEVPATH=/devices/x/block/sda\x00SUBSYSTEM=block\x00DEVNAME=sda\x00")); !ok || ev.Udev || ev.DevName != "sda" {
		t.Errorf("the kernel's message: %+v, %v", ev, ok)
	}
}

// TestUdevHash: the values of the C MurmurHash2 (seed 0) udev uses,
// computed on a little-endian host; for strings of 4 bytes or more they
// depend on the byte order, as udev's do.
func TestUdevHash(t *testing.T) {
	want := map[string]uint32{"": 0, "a": 0x92685f5e, "ab": 0x1aa14063, "abc": 0x13577c9b}
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		for k, v := range map[string]uint32{"abcd": 0x26873021, "block": 0xf0031db7, "disk": 0x7bcbc5ee, "partition": 0xcb234489, "usb": 0x0577c5e5} {
			want[k] = v
		}
	}
	for s, h := range want {
		if got := udevHash(s); got != h {
			t.Errorf("udevHash(%q) = %#08x, want %#08x", s, got, h)
		}
	}
}

func TestUdevPending(t *testing.T) {
	run := t.TempDir()
	if udevPending(run, "8:16") {
		t.Error("no udevd (no control socket): nothing is pending")
	}
	if err := os.WriteFile(filepath.Join(run, "control"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !udevPending(run, "8:16") {
		t.Error("udevd runs and has no database entry for 8:16: pending")
	}
	if err := os.MkdirAll(filepath.Join(run, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "data", "b8:16"), []byte("I:81234567\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if udevPending(run, "8:16") || udevPending(run, "") {
		t.Error("udevd has finished with 8:16: not pending")
	}
}
