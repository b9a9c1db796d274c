package firmware

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelperRefuses: the mount helper runs as root for a less trusted
// user; what it is handed beyond a USB stick's partition is refused
// before anything is mounted.
func TestHelperRefuses(t *testing.T) {
	root := t.TempDir()
	hp := HostPaths{Sys: filepath.Join(root, "sys"), Dev: filepath.Join(root, "dev"), Proc: "/proc", MountBase: filepath.Join(root, "run/boxagent/usb")}
	os.MkdirAll(filepath.Join(hp.Sys, "block"), 0o755)
	os.MkdirAll(hp.MountBase, 0o700)
	owner := Owner{UID: os.Getuid(), GID: os.Getgid()}
	if _, err := HelperMount(context.Background(), hp, "rw-sda1/../../x", owner); err == nil || !strings.Contains(err.Error(), "not a mount instance") {
		t.Errorf("a path in the instance: %v", err)
	}
	if _, err := HelperMount(context.Background(), hp, "rw-sdz9", owner); !errors.Is(err, ErrNoStick) {
		t.Errorf("a device that is no USB stick: %v", err)
	}

	// A link where the mount point or its folder should be: refused.
	real := filepath.Join(root, "elsewhere")
	os.MkdirAll(real, 0o700)
	link := filepath.Join(hp.MountBase, "STICK01")
	os.Symlink(real, link)
	if err := checkOwnedDirs(link, owner); err == nil {
		t.Error("a link as the mount point was taken")
	}
	if err := checkOwnedDirs(hp.MountBase, owner); err != nil {
		t.Errorf("the agent's own folder: %v", err)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(hp.MountBase, "OTHER01")
		os.Mkdir(other, 0o700)
		os.Chown(other, 4242, 4242)
		if err := checkOwnedDirs(other, Owner{UID: 998, GID: 998}); err == nil {
			t.Error("a folder of another user's was taken")
		}
	}
	if d, err := openNoFollow(link); err == nil {
		d.Close()
		t.Error("openNoFollow followed a link")
	}
}
