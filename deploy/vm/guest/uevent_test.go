package guest

import "testing"

func TestParseUevent(t *testing.T) {
	msg := "add@/devices/pci0000:00/0000:00:02.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1\x00" +
		"ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:02.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1\x00" +
		"SUBSYSTEM=block\x00MAJOR=8\x00MINOR=1\x00DEVNAME=sda1\x00DEVTYPE=partition\x00PARTN=1\x00SEQNUM=1234\x00"
	ev, ok := parseUevent([]byte(msg))
	if !ok {
		t.Fatal("not parsed")
	}
	if ev.Action != "add" || ev.Subsystem != "block" || ev.DevType != "partition" || ev.DevName != "sda1" || ev.Env["PARTN"] != "1" {
		t.Errorf("parsed %+v", ev)
	}
	if _, ok := parseUevent([]byte("libudev\x00\xfe\xed")); ok {
		t.Error("a libudev message parsed as a kernel uevent")
	}
}
