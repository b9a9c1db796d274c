package firmware

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeHost is a sysfs, /dev and /proc tree in a temporary folder, laid
// out as the kernel lays out a USB stick (usb device, interface, SCSI
// device, block disk and partitions), so discovery, staging and eject run
// against it on any machine. The "filesystem" of a partition is a folder
// the fake mounter links the mount point to.
type fakeHost struct {
	t       *testing.T
	root    string
	hp      HostPaths
	mu      sync.Mutex
	mounts  []Mount
	content map[string]string // majmin -> folder holding the partition's files
	nextMaj int
}

func newFakeHost(t *testing.T) *fakeHost {
	root := t.TempDir()
	h := &fakeHost{t: t, root: root, content: map[string]string{}, nextMaj: 8,
		hp: HostPaths{Sys: filepath.Join(root, "sys"), Dev: filepath.Join(root, "dev"), Proc: filepath.Join(root, "proc"), MountBase: filepath.Join(root, "run/boxagent/usb")}}
	for _, d := range []string{"sys/block", "sys/bus/usb", "sys/bus/scsi", "sys/class/block", "dev", "proc/self"} {
		h.mkdir(filepath.Join(root, d))
	}
	h.writeMountinfo()
	return h
}

func (h *fakeHost) mkdir(d string) {
	if err := os.MkdirAll(d, 0o755); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeHost) write(path, content string) {
	h.mkdir(filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeHost) link(target, at string) {
	if err := os.Symlink(target, at); err != nil {
		h.t.Fatal(err)
	}
}

// fat32Image returns a disk image: an MBR with one 0x0c partition at 1 MiB
// holding a FAT32 boot sector (enough for Inspect), or exFAT when fs says.
func fat32Image(fs string) []byte {
	img := make([]byte, 1<<20+4096)
	img[446+4] = 0x0c
	binary.LittleEndian.PutUint32(img[446+8:], 2048)
	binary.LittleEndian.PutUint32(img[446+12:], 8)
	img[510], img[511] = 0x55, 0xaa
	b := img[1<<20:]
	b[0], b[1], b[2] = 0xeb, 0x58, 0x90
	switch fs {
	case "exfat":
		copy(b[3:], "EXFAT   ")
	default:
		copy(b[3:], "mkfs.fat")
		binary.LittleEndian.PutUint16(b[11:], 512)
		b[13] = 8
		binary.LittleEndian.PutUint16(b[14:], 32)
		b[16] = 2
		b[21] = 0xf8
		binary.LittleEndian.PutUint32(b[32:], 8*2048)
		binary.LittleEndian.PutUint32(b[36:], 16)
		b[66] = 0x29
		copy(b[71:82], "LABSTICK   ")
		copy(b[82:90], "FAT32   ")
	}
	b[510], b[511] = 0x55, 0xaa
	return img
}

type fakeStick struct {
	name, serial string
	fs           string // fat32 (default) or exfat
	ro           bool
	usb          bool
}

// addStick lays the stick out in sysfs and /dev; it returns the
// partition's majmin.
func (h *fakeHost) addStick(s fakeStick) string {
	maj := h.nextMaj
	h.nextMaj++
	var dev string
	if s.usb {
		usbdev := filepath.Join(h.root, "sys/devices/pci0000:00/0000:00:04.0/usb2", fmt.Sprintf("2-%d", maj))
		h.write(filepath.Join(usbdev, "idVendor"), "46f4")
		h.write(filepath.Join(usbdev, "serial"), s.serial)
		h.write(filepath.Join(usbdev, "manufacturer"), "QEMU")
		h.link(filepath.Join(h.root, "sys/bus/usb"), filepath.Join(usbdev, "subsystem"))
		intf := filepath.Join(usbdev, fmt.Sprintf("2-%d:1.0", maj))
		h.write(filepath.Join(intf, "bInterfaceClass"), "08")
		h.link(filepath.Join(h.root, "sys/bus/usb"), filepath.Join(intf, "subsystem"))
		dev = filepath.Join(intf, "host0/target0:0:0/0:0:0:0")
	} else {
		dev = filepath.Join(h.root, "sys/devices/pci0000:00/0000:00:1f.2/ata1/host1/target1:0:0/1:0:0:0")
	}
	h.write(filepath.Join(dev, "vendor"), "QEMU    ")
	h.write(filepath.Join(dev, "model"), "QEMU HARDDISK   ")
	h.link(filepath.Join(h.root, "sys/bus/scsi"), filepath.Join(dev, "subsystem"))
	blk := filepath.Join(dev, "block", s.name)
	img := fat32Image(s.fs)
	h.write(filepath.Join(blk, "dev"), fmt.Sprintf("%d:0", maj))
	h.write(filepath.Join(blk, "size"), fmt.Sprint(len(img)/512))
	h.write(filepath.Join(blk, "removable"), "1")
	ro := "0"
	if s.ro {
		ro = "1"
	}
	h.write(filepath.Join(blk, "ro"), ro)
	h.write(filepath.Join(blk, s.name+"1", "partition"), "1")
	mm := fmt.Sprintf("%d:1", maj)
	h.write(filepath.Join(blk, s.name+"1", "dev"), mm)
	h.link(dev, filepath.Join(blk, "device"))
	h.link(blk, filepath.Join(h.hp.Sys, "block", s.name))
	if err := os.WriteFile(filepath.Join(h.hp.Dev, s.name), img, 0o600); err != nil {
		h.t.Fatal(err)
	}
	h.content[mm] = h.t.TempDir()
	return mm
}

func (h *fakeHost) removeStick(name string) {
	os.Remove(filepath.Join(h.hp.Sys, "block", name))
	os.Remove(filepath.Join(h.hp.Dev, name))
}

func (h *fakeHost) writeMountinfo() {
	var b strings.Builder
	b.WriteString("22 1 0:21 / / rw,relatime - ext4 /dev/root rw\n")
	for i, m := range h.mounts {
		fmt.Fprintf(&b, "%d 22 %s / %s %s - %s %s rw\n", 100+i, m.MajMin, strings.ReplaceAll(m.Dir, " ", `\040`), m.Options, m.FSType, m.Source)
	}
	h.write(filepath.Join(h.hp.Proc, "self/mountinfo"), strings.TrimSuffix(b.String(), "\n"))
}

func (h *fakeHost) majminOf(dev string) string {
	name := filepath.Base(dev)
	disk := strings.TrimRight(name, "0123456789")
	return readSysString(filepath.Join(h.hp.Sys, "block", disk, name, "dev"))
}

// Mount implements Mounter: the mount point becomes a link to the
// partition's content folder.
func (h *fakeHost) Mount(ctx context.Context, req MountRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts := "rw,nosuid,nodev,noexec"
	if req.ReadOnly {
		opts = "ro,nosuid,nodev,noexec"
	}
	if req.Remount {
		for i := range h.mounts {
			if h.mounts[i].Dir == req.Target {
				h.mounts[i].Options = opts
				h.writeMountinfo()
				return nil
			}
		}
		return fmt.Errorf("remount: %s is not mounted", req.Target)
	}
	mm := h.majminOf(req.Source)
	c, ok := h.content[mm]
	if !ok {
		return fmt.Errorf("mount: no device %s", req.Source)
	}
	h.mkdir(filepath.Dir(req.Target))
	if err := os.Symlink(c, req.Target); err != nil {
		return err
	}
	h.mounts = append(h.mounts, Mount{MajMin: mm, Dir: req.Target, FSType: req.FSType, Source: req.Source, Options: opts})
	h.writeMountinfo()
	return nil
}

func (h *fakeHost) Unmount(ctx context.Context, dir string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, m := range h.mounts {
		if m.Dir == dir {
			h.mounts = slices.Delete(h.mounts, i, i+1)
			h.writeMountinfo()
			return os.Remove(dir)
		}
	}
	return fmt.Errorf("unmount: %s is not mounted", dir)
}

var quiet = slog.New(slog.DiscardHandler)

func TestScan(t *testing.T) {
	h := newFakeHost(t)
	h.addStick(fakeStick{name: "sda", serial: "LABfat32", usb: true})
	h.addStick(fakeStick{name: "sdb", usb: false})
	h.addStick(fakeStick{name: "sdc", serial: "ro stick", usb: true, ro: true, fs: "exfat"})
	got, err := Scan(h.hp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "sda" || got[1].Name != "sdc" {
		t.Fatalf("Scan = %+v, want sda and sdc (sdb is not on USB)", got)
	}
	a := got[0]
	if a.Serial != "LABfat32" || a.Vendor != "QEMU" || a.Model != "QEMU HARDDISK" || a.Size != int64(len(fat32Image(""))) ||
		!a.Removable || a.ReadOnly || a.Problem != "" || a.ID() != "LABfat32" || a.MajMin != "8:0" {
		t.Errorf("sda = %+v", a)
	}
	if a.Disk.Scheme != "mbr" || len(a.Disk.Partitions) != 1 || a.Disk.Partitions[0].FS != "fat32" || a.Disk.Partitions[0].Label != "LABSTICK" {
		t.Errorf("sda disk = %+v", a.Disk)
	}
	if p, ok := a.Partition("sda1"); !ok || p.Index != 1 {
		t.Errorf("Partition(sda1) = %+v, %v", p, ok)
	}
	c := got[1]
	if !c.ReadOnly || c.ID() != "rostick" || c.Disk.Partitions[0].FS != "exfat" {
		t.Errorf("sdc = %+v (the ID drops what cannot be in a folder name)", c)
	}
}

// fakeUevents feeds the watcher.
type fakeUevents struct {
	ch   chan any // uevent or error
	once sync.Once
	// pending: udevd runs and has not finished with any device.
	pending atomic.Bool
}

func (f *fakeUevents) udevPending(string) bool { return f.pending.Load() }

func (f *fakeUevents) read() (uevent, error) {
	v, ok := <-f.ch
	if !ok {
		return uevent{}, os.ErrClosed
	}
	if err, ok := v.(error); ok {
		return uevent{}, err
	}
	return v.(uevent), nil
}

func (f *fakeUevents) close() error {
	f.once.Do(func() { close(f.ch) })
	return nil
}

// startWatcher follows the fake host's sticks with src's uevents until
// the test ends; the watcher's events go to the channel.
func startWatcher(t *testing.T, h *fakeHost, src *fakeUevents) (*Watcher, chan StickEvent) {
	events := make(chan StickEvent, 8)
	w, err := newWatcher(WatchOptions{Paths: h.hp, Logger: quiet, OnEvent: func(e StickEvent) { events <- e }}, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, events
}

func TestWatcher(t *testing.T) {
	h := newFakeHost(t)
	h.addStick(fakeStick{name: "sda", serial: "AT-BOOT-1", usb: true})
	src := &fakeUevents{ch: make(chan any, 8)}
	w, events := startWatcher(t, h, src)
	if l := w.List(); len(l) != 1 || l[0].Serial != "AT-BOOT-1" {
		t.Fatalf("a stick present at start: List = %+v", l)
	}
	next := func(want string, name string) {
		t.Helper()
		select {
		case e := <-events:
			if e.Type != want || e.Stick.Name != name {
				t.Fatalf("event %s %s, want %s %s", e.Type, e.Stick.Name, want, name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event for %s", want, name)
		}
	}
	h.addStick(fakeStick{name: "sdb", serial: "PLUGGED-2", usb: true})
	src.ch <- uevent{Action: "add", Subsystem: "usb", DevPath: "/devices/pci0000:00/0000:00:04.0/usb2/2-9"}
	src.ch <- uevent{Action: "add", Subsystem: "block", DevType: "disk", DevName: "sdb", DevPath: "/devices/…/block/sdb"}
	next(StickAdded, "sdb")
	if s, ok := w.Get("sdb1"); !ok || s.Serial != "PLUGGED-2" {
		t.Errorf("Get(sdb1) = %+v, %v", s, ok)
	}
	h.removeStick("sda")
	src.ch <- uevent{Action: "remove", Subsystem: "block", DevType: "disk", DevName: "sda", DevPath: "/devices/…/block/sda"}
	next(StickRemoved, "sda")
	// Lost uevents: the rescan finds what changed.
	h.addStick(fakeStick{name: "sdc", serial: "LOST-EVENT", usb: true})
	h.removeStick("sdb")
	src.ch <- errOverrun
	got := map[string]string{}
	for range 2 {
		select {
		case e := <-events:
			got[e.Stick.Name] = e.Type
		case <-time.After(5 * time.Second):
			t.Fatal("no events after the rescan")
		}
	}
	if got["sdb"] != StickRemoved || got["sdc"] != StickAdded {
		t.Errorf("after the rescan: %v", got)
	}
	if l := w.List(); len(l) != 1 || l[0].Name != "sdc" {
		t.Errorf("List = %+v", l)
	}
}

func TestParseUevent(t *testing.T) {
	ev, ok := parseUevent([]byte("add@/devices/x/block/sda\x00ACTION=add\x00DEVPATH=/devices/x/block/sda\x00SUBSYSTEM=block\x00DEVTYPE=disk\x00DEVNAME=sda\x00SEQNUM=1\x00"))
	if !ok || ev.Action != "add" || ev.DevName != "sda" || ev.DevType != "disk" || ev.Subsystem != "block" {
		t.Errorf("parseUevent = %+v, %v", ev, ok)
	}
	if _, ok := parseUevent([]byte("libudev\x00\xfe\xed")); ok {
		t.Error("a libudev message was taken for a kernel one")
	}
}

func TestParseMountinfo(t *testing.T) {
	m, ok := parseMountinfo(`120 22 8:1 / /run/boxagent/usb/my\040stick rw,nosuid,nodev,noexec,relatime shared:1 - vfat /dev/sda1 rw,fmask=0022`)
	if !ok || m.MajMin != "8:1" || m.Dir != "/run/boxagent/usb/my stick" || m.FSType != "vfat" || m.Source != "/dev/sda1" || m.ReadOnly() {
		t.Errorf("parseMountinfo = %+v, %v", m, ok)
	}
	m, _ = parseMountinfo(`121 22 8:17 / /media/x ro,relatime - vfat /dev/sdb1 ro`)
	if !m.ReadOnly() {
		t.Errorf("%+v is read-only", m)
	}
}

// denyOpen makes openDevice refuse the nodes named in the returned set
// with EACCES, as the kernel does to user boxagent before udev has given
// the node group disk (the tests run as root, who opens anything), and
// counts the opens.
func denyOpen(t *testing.T) (*sync.Map, *atomic.Int32) {
	var denied sync.Map
	var opens atomic.Int32
	open := openDevice
	openDevice = func(name string) (*os.File, error) {
		opens.Add(1)
		if _, ok := denied.Load(filepath.Base(name)); ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		}
		return open(name)
	}
	t.Cleanup(func() { openDevice = open })
	return &denied, &opens
}

// TestWatcherUdev: a stick whose node refuses the agent at the kernel's
// "add" is read again on udev's "add" for the disk, and only then.
func TestWatcherUdev(t *testing.T) {
	h := newFakeHost(t)
	denied, opens := denyOpen(t)
	src := &fakeUevents{ch: make(chan any, 8)}
	src.pending.Store(true)
	_, events := startWatcher(t, h, src)
	next := func(want string) Stick {
		t.Helper()
		select {
		case e := <-events:
			if e.Type != want || e.Stick.Name != "sdb" {
				t.Fatalf("event %s %s, want %s sdb", e.Type, e.Stick.Name, want)
			}
			return e.Stick
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event for sdb", want)
		}
		return Stick{}
	}
	h.addStick(fakeStick{name: "sdb", serial: "PLUGGED-2", usb: true})
	denied.Store("sdb", true)
	const devpath = "/devices/pci0000:00/0000:00:04.0/usb2/2-8/2-8:1.0/host0/target0:0:0/0:0:0:0/block/sdb"
	src.ch <- uevent{Action: "add", Subsystem: "block", DevType: "disk", DevName: "sdb", DevPath: devpath}
	s := next(StickAdded)
	if !strings.Contains(s.Problem, "permission denied") || !strings.Contains(s.Problem, "waiting for udev") {
		t.Errorf("before udev: Problem %q, want permission denied, waiting for udev", s.Problem)
	}
	// udev's events that do not concern the refused disk change nothing:
	// its partition's, another subsystem's, a removal.
	src.ch <- uevent{Udev: true, Action: "add", Subsystem: "block", DevType: "partition", DevName: "sdb1", DevPath: devpath + "/sdb1"}
	src.ch <- uevent{Udev: true, Action: "add", Subsystem: "usb", DevType: "usb_device", DevPath: "/devices/pci0000:00/0000:00:04.0/usb2/2-8"}
	src.ch <- uevent{Udev: true, Action: "bind", Subsystem: "block", DevType: "disk", DevName: "sdb", DevPath: devpath}
	// udev has set the node's group; its "add" for the disk brings a new read.
	denied.Delete("sdb")
	src.pending.Store(false)
	src.ch <- uevent{Udev: true, Action: "add", Subsystem: "block", DevType: "disk", DevName: "sdb", DevPath: devpath}
	s = next(StickChanged)
	if s.Problem != "" || len(s.Disk.Partitions) != 1 || s.Disk.Partitions[0].FS != "fat32" {
		t.Errorf("after udev: %+v", s)
	}
	if n := opens.Load(); n != 2 {
		t.Errorf("%d opens of /dev/sdb, want 2 (the kernel's add, udev's add)", n)
	}
	// A stick that can be read is not read again on udev's events.
	src.ch <- uevent{Udev: true, Action: "change", Subsystem: "block", DevType: "disk", DevName: "sdb", DevPath: devpath}
	src.ch <- uevent{Action: "remove", Subsystem: "block", DevType: "disk", DevName: "sdb", DevPath: devpath}
	h.removeStick("sdb")
	next(StickRemoved)
	if n := opens.Load(); n != 2 {
		t.Errorf("%d opens of /dev/sdb, want still 2", n)
	}
}

// TestWatcherDeniedWithoutUdev: without udevd (or once it has finished
// with the node) the refusal is reported as it is, and a stick refused at
// the first scan is read again on udev's "change".
func TestWatcherDeniedWithoutUdev(t *testing.T) {
	h := newFakeHost(t)
	denied, _ := denyOpen(t)
	h.addStick(fakeStick{name: "sda", serial: "AT-BOOT-1", usb: true})
	denied.Store("sda", true)
	src := &fakeUevents{ch: make(chan any, 8)}
	w, events := startWatcher(t, h, src)
	l := w.List()
	if len(l) != 1 || !strings.HasSuffix(l[0].Problem, "permission denied") {
		t.Fatalf("List = %+v, want sda with its refusal as is", l)
	}
	denied.Delete("sda")
	src.ch <- uevent{Udev: true, Action: "change", Subsystem: "block", DevType: "disk", DevName: "sda", DevPath: "/devices/x/block/sda"}
	select {
	case e := <-events:
		if e.Type != StickChanged || e.Stick.Problem != "" {
			t.Errorf("event %+v, want sda changed without a problem", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after udev's change")
	}
}
