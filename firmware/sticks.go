package firmware

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Errors about the stick itself.
var (
	ErrNoStick  = errors.New("no USB stick")
	ErrReadOnly = errors.New("the stick is read-only")
	ErrNoSpace  = errors.New("not enough free space on the stick")
	ErrTooLarge = errors.New("package too large for the stick's filesystem")
	ErrGone     = errors.New("the stick went away")
)

// HostPaths locates the system files stick discovery and staging read:
// sysfs, /dev, /proc (mountinfo), and the folder sticks are mounted under.
// Tests point them into a temporary folder.
type HostPaths struct {
	Sys       string // /sys
	Dev       string // /dev
	Proc      string // /proc
	MountBase string // /run/boxagent/usb
}

// DefaultHostPaths are the paths of an installed box.
var DefaultHostPaths = HostPaths{Sys: "/sys", Dev: "/dev", Proc: "/proc", MountBase: "/run/boxagent/usb"}

// Stick is a USB mass-storage disk as sysfs describes it, with what
// Inspect found on it.
type Stick struct {
	Name      string `json:"name"` // kernel name: sda
	Serial    string `json:"serial,omitempty"`
	Vendor    string `json:"vendor,omitempty"`
	Model     string `json:"model,omitempty"`
	Size      int64  `json:"size"` // bytes
	Removable bool   `json:"removable"`
	ReadOnly  bool   `json:"read_only"`
	// USBPath is the USB port path ("2-1"): where it is plugged.
	USBPath string `json:"usb_path,omitempty"`
	Disk    Disk   `json:"disk"`
	// Problem says why the disk could not be inspected ("" when it was).
	Problem string `json:"problem,omitempty"`
	// MajMin is the disk's device number "8:0".
	MajMin string `json:"majmin,omitempty"`
	// denied: its node refused the agent (EACCES, EPERM). The Watcher
	// reads it again when udev has finished with it.
	denied bool
}

// ID names the stick for its mount folder and in messages: its USB serial
// when it has a usable one, else the kernel name.
func (s Stick) ID() string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s.Serial)
	if len(id) < 4 || len(id) > 64 {
		return s.Name
	}
	return id
}

// PartitionDevice is the kernel name of a partition of the stick: sda1,
// or sda for a superfloppy (Index 0).
func (s Stick) PartitionDevice(p Partition) string {
	if p.Index == 0 {
		return s.Name
	}
	if n := s.Name; n != "" && n[len(n)-1] >= '0' && n[len(n)-1] <= '9' {
		return n + "p" + strconv.Itoa(p.Index) // mmcblk0p1, nvme0n1p1
	}
	return s.Name + strconv.Itoa(p.Index)
}

// Partition finds the partition with kernel name dev ("sda1").
func (s Stick) Partition(dev string) (Partition, bool) {
	for _, p := range s.Disk.Partitions {
		if s.PartitionDevice(p) == dev {
			return p, true
		}
	}
	return Partition{}, false
}

// readSysString reads a sysfs attribute, trimmed; "" when absent.
func readSysString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// usbAncestor walks from the disk's device up the device tree and returns
// the USB device (the one with idVendor) it hangs below, or "" when the
// disk is not on USB. It reads the subsystem links, not udev's ID_BUS:
// there may be no udev on the box.
func usbAncestor(sys, name string) string {
	dev, err := filepath.EvalSymlinks(filepath.Join(sys, "block", name, "device"))
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(sys); err == nil {
		sys = r
	}
	onUSB := false
	for d := dev; strings.HasPrefix(d, sys+"/"); d = filepath.Dir(d) {
		sub, err := os.Readlink(filepath.Join(d, "subsystem"))
		if err != nil || filepath.Base(sub) != "usb" {
			continue
		}
		onUSB = true
		if _, err := os.Stat(filepath.Join(d, "idVendor")); err == nil {
			return d
		}
	}
	if onUSB {
		return filepath.Dir(dev) // an interface without its device: still USB
	}
	return ""
}

// ReadStick describes block device name ("sda") from sysfs, or returns
// ok false when it is not a USB disk. It does not read the disk; Inspect
// does (see Scan).
func ReadStick(hp HostPaths, name string) (Stick, bool) {
	blk := filepath.Join(hp.Sys, "block", name)
	if _, err := os.Stat(filepath.Join(blk, "partition")); err == nil {
		return Stick{}, false // a partition, not a disk
	}
	usb := usbAncestor(hp.Sys, name)
	if usb == "" {
		return Stick{}, false
	}
	s := Stick{Name: name, USBPath: filepath.Base(usb), MajMin: readSysString(filepath.Join(blk, "dev"))}
	s.Serial = readSysString(filepath.Join(usb, "serial"))
	s.Vendor = readSysString(filepath.Join(blk, "device", "vendor"))
	if s.Vendor == "" {
		s.Vendor = readSysString(filepath.Join(usb, "manufacturer"))
	}
	s.Model = readSysString(filepath.Join(blk, "device", "model"))
	if s.Model == "" {
		s.Model = readSysString(filepath.Join(usb, "product"))
	}
	if n, err := strconv.ParseInt(readSysString(filepath.Join(blk, "size")), 10, 64); err == nil {
		s.Size = n * 512 // sysfs counts 512-byte sectors whatever the device's
	}
	s.Removable = readSysString(filepath.Join(blk, "removable")) == "1"
	s.ReadOnly = readSysString(filepath.Join(blk, "ro")) == "1"
	return s, true
}

// openDevice opens a device node; tests replace it, as root opens any
// node whatever its mode.
var openDevice = os.Open

// inspectStick reads the partition table of the stick's device node.
func inspectStick(hp HostPaths, s *Stick) {
	s.Disk, s.Problem, s.denied = Disk{Scheme: "none", SectorSize: sector, Size: s.Size}, "", false
	if s.Size == 0 {
		s.Problem = "no medium"
		return
	}
	f, err := openDevice(filepath.Join(hp.Dev, s.Name))
	if err != nil {
		s.Problem = fmt.Sprintf("cannot open /dev/%s: %v", s.Name, err)
		s.denied = errors.Is(err, fs.ErrPermission)
		return
	}
	defer f.Close()
	d, err := Inspect(f, s.Size)
	if err != nil {
		s.Problem = err.Error()
	}
	s.Disk = d
}

// Scan lists the USB disks present now, from sysfs, each inspected.
func Scan(hp HostPaths) ([]Stick, error) {
	ents, err := os.ReadDir(filepath.Join(hp.Sys, "block"))
	if err != nil {
		return nil, fmt.Errorf("cannot list block devices: %w", err)
	}
	var out []Stick
	for _, e := range ents {
		s, ok := ReadStick(hp, e.Name())
		if !ok {
			continue
		}
		inspectStick(hp, &s)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Stick) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// StickEvent says a stick came or went.
type StickEvent struct {
	Type  string `json:"type"` // StickAdded, StickRemoved, StickChanged
	Stick Stick  `json:"stick"`
}

// Stick event types.
const (
	StickAdded   = "added"
	StickRemoved = "removed"
	StickChanged = "changed" // new medium, or the partition table was re-read
)
