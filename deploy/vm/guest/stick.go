package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
	"golang.org/x/sys/unix"
)

// StickTimeout bounds a plug or an unplug (sda1 appears ~1.7 s after the
// plug under TCG).
const StickTimeout = 30 * time.Second

// Stick is a USB stick the host hot-plugged (vm.Options.Sticks).
type Stick struct {
	Name       string
	Disk       string   // /dev/sda
	Partitions []string // /dev/sda1…, as the kernel found them
	SysPath    string   // /sys/devices/…/block/sda
	plugged    bool
}

// PlugStick asks the host to hot-plug the stick name and returns once the
// kernel has announced its disk (its partitions are announced with it). If
// still plugged at the end of the test, it is unplugged.
func PlugStick(t testing.TB, name string) *Stick {
	t.Helper()
	Modprobe(t, USBStorageModules...)
	u, err := OpenUevents()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	id, err := vm.SendRequest(vm.Request{Op: vm.OpPlug, Stick: name})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StickTimeout)
	defer cancel()
	start := time.Now()
	ev, err := u.Wait(ctx, func(ev Uevent) bool {
		return ev.Action == "add" && ev.Subsystem == "block" && ev.DevType == "disk" && strings.Contains(ev.DevPath, "/usb")
	})
	if err != nil {
		t.Fatalf("cannot see stick %s appear: %v%s", name, err, hostError(id))
	}
	s := &Stick{Name: name, Disk: "/dev/" + ev.DevName, SysPath: "/sys" + ev.DevPath, plugged: true}
	// The kernel adds the partitions before it announces the disk.
	ents, err := os.ReadDir(s.SysPath)
	if err != nil {
		t.Fatalf("cannot list %s: %v", s.SysPath, err)
	}
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(s.SysPath, e.Name(), "partition")); err == nil {
			s.Partitions = append(s.Partitions, "/dev/"+e.Name())
		}
	}
	sort.Strings(s.Partitions)
	t.Logf("stick %s: %s %v after %s", name, s.Disk, s.Partitions, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if s.plugged {
			if err := s.unplug(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return s
}

// hostError explains a failed request with the host's reply, if any.
func hostError(id string) string {
	r, err := vm.ReadReply(id)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return " (the host has not answered)"
	case err != nil:
		return fmt.Sprintf(" (%v)", err)
	case r.Error != "":
		return " (host: " + r.Error + ")"
	}
	return ""
}

// Unplug asks the host to unplug the stick and returns once the kernel has
// removed its disk. Unmount it first.
func (s *Stick) Unplug(t testing.TB) {
	t.Helper()
	if err := s.unplug(); err != nil {
		t.Fatal(err)
	}
}

func (s *Stick) unplug() error {
	u, err := OpenUevents()
	if err != nil {
		return err
	}
	defer u.Close()
	id, err := vm.SendRequest(vm.Request{Op: vm.OpUnplug, Stick: s.Name})
	if err != nil {
		return err
	}
	s.plugged = false
	ctx, cancel := context.WithTimeout(context.Background(), StickTimeout)
	defer cancel()
	devpath := strings.TrimPrefix(s.SysPath, "/sys")
	if _, err := u.Wait(ctx, func(ev Uevent) bool {
		return ev.Action == "remove" && ev.DevPath == devpath
	}); err != nil {
		return fmt.Errorf("cannot see stick %s go: %w%s", s.Name, err, hostError(id))
	}
	return nil
}

// Mount mounts dev (e.g. s.Partitions[0]) with fstype under a temporary
// folder and unmounts it at cleanup if still mounted. options is the file
// system's data ("utf8,flush"), not mount flags: "ro" is not one.
func Mount(t testing.TB, dev, fstype, options string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, fstype, 0, options); err != nil {
		t.Fatalf("cannot mount %s (%s) on %s: %v", dev, fstype, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("cannot unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Unmount unmounts a folder mounted with Mount.
func Unmount(t testing.TB, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("cannot unmount %s: %v", dir, err)
	}
}
