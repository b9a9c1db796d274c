//go:build lab

package guest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/deploy/vm"
)

// The lab's self-tests: they prove the virtual board, not boxagent. The host
// runs them in one boot (deploy/vm TestLabSelfTests).

// TestVLAN45 carries traffic over VLAN 45 between two namespaces.
func TestVLAN45(t *testing.T) {
	vm.RequireGuest(t)
	Modprobe(t, VLANModules...)
	peer := NewNetns(t, "peer")
	Veth(t, "ve0", InitNS, "ve1", peer)
	v0 := InitNS.AddVLAN(t, "ve0", 45)
	v1 := peer.AddVLAN(t, "ve1", 45)
	InitNS.Addr(t, v0, "198.51.100.1/24")
	peer.Addr(t, v1, "198.51.100.2/24")
	if err := InitNS.Ping(t, "198.51.100.2", 10); err != nil {
		t.Fatal(err)
	}
	vlan, err := os.ReadFile("/proc/net/vlan/" + v0)
	if err != nil || !strings.Contains(string(vlan), "VID: 45") {
		t.Errorf("/proc/net/vlan/%s = %q, %v; want VID: 45", v0, vlan, err)
	}
	// Nothing answers untagged: the tag is what carries the traffic.
	InitNS.Addr(t, "ve0", "203.0.113.1/24")
	peer.Addr(t, "ve1", "203.0.113.2/24")
	if err := peer.Ping(t, "198.51.100.1", 10); err != nil {
		t.Errorf("the peer cannot answer back over the VLAN: %v", err)
	}
}

// TestDHCPVendorClass: dnsmasq in a namespace answers an IPoE client with
// the right vendor class (option 60) over VLAN 45.
func TestDHCPVendorClass(t *testing.T) {
	vm.RequireGuest(t)
	Modprobe(t, VLANModules...)
	srv := NewNetns(t, "srv")
	Veth(t, "vd0", InitNS, "vd1", srv)
	c := InitNS.AddVLAN(t, "vd0", 45)
	s := srv.AddVLAN(t, "vd1", 45)
	srv.Addr(t, s, "10.45.1.1/24")
	StartDnsmasq(t, DnsmasqConfig{NS: srv, Interface: s, Range: "10.45.1.100,10.45.1.200,255.255.255.0,1h", VendorClass: "IPTV_TEST", NoPing: true})
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && ip addr add $ip/${mask:-24} dev $interface\nexit 0\n"), 0o755)
	out, err := exec.Command("busybox", "udhcpc", "-B", "-V", "IPTV_TEST", "-i", c, "-n", "-q", "-t", "5", "-T", "2", "-s", script).CombinedOutput()
	if err != nil {
		t.Fatalf("no lease: %v: %s", err, out)
	}
	if addr := InitNS.IP(t, "-br", "addr", "show", c); !strings.Contains(addr, "10.45.1.1") {
		t.Errorf("address after the lease: %s", addr)
	}
}

// TestSystemBus starts the system bus and asks it its name list.
func TestSystemBus(t *testing.T) {
	vm.RequireGuest(t)
	b := StartSystemBus(t)
	out, err := exec.Command("dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.ListNames").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "org.freedesktop.DBus") {
		t.Fatalf("ListNames on %s: %v: %s", b.Address, err, out)
	}
}

// TestStick hot-plugs the FAT32 stick, writes a package on it, unplugs it.
// The host checks the image afterwards (fsck.fat -n, mdir, mcopy).
func TestStick(t *testing.T) {
	vm.RequireGuest(t)
	s := PlugStick(t, "fat32")
	if len(s.Partitions) != 1 || s.Partitions[0] != s.Disk+"1" {
		t.Fatalf("partitions %v, want %s1", s.Partitions, s.Disk)
	}
	if ro, _ := os.ReadFile(filepath.Join(s.SysPath, "removable")); !bytes.Equal(bytes.TrimSpace(ro), []byte("1")) {
		t.Errorf("removable = %q, want 1", ro)
	}
	dir := Mount(t, s.Partitions[0], "vfat", "utf8")
	pkg := make([]byte, 1<<20)
	rand.Read(pkg)
	if err := os.MkdirAll(filepath.Join(dir, "update"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"update/update.zip": pkg, "update/VERSION.TXT": []byte("lab-build 1\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Unmount(t, dir)
	s.Unplug(t)
	if _, err := os.Stat(s.Disk); err == nil {
		t.Errorf("%s still there after the unplug", s.Disk)
	}
	sum := sha256.Sum256(pkg)
	if res := vm.ResultsDir(); res != "" {
		os.WriteFile(filepath.Join(res, "stick-update.sha256"), []byte(hex.EncodeToString(sum[:])), 0o644)
	}
}

// TestStickKinds: the refusal-case images look to the guest kernel as
// intended (a GPT partition, no partition at all, ext2 on sda1).
func TestStickKinds(t *testing.T) {
	vm.RequireGuest(t)
	Modprobe(t, "ext4") // Debian's ext2 driver
	for _, tc := range []struct {
		name   string
		parts  int
		fstype string // of the first partition, or of the disk without one
	}{
		{"gpt", 1, "vfat"},
		{"notable", 0, "vfat"},
		{"ext2", 1, "ext2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := PlugStick(t, tc.name)
			if len(s.Partitions) != tc.parts {
				t.Fatalf("partitions %v, want %d", s.Partitions, tc.parts)
			}
			dev := s.Disk
			if tc.parts > 0 {
				dev = s.Partitions[0]
			}
			dir := Mount(t, dev, tc.fstype, "")
			Unmount(t, dir)
			s.Unplug(t)
		})
	}
}
