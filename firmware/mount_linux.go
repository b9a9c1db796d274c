package firmware

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/internal/nofollow"
)

// DirectMounter mounts with mount(2): the agent needs CAP_SYS_ADMIN.
type DirectMounter struct{}

var _ Mounter = DirectMounter{}

// Mount mounts with nosuid, nodev and noexec: a stick's content is data.
func (DirectMounter) Mount(ctx context.Context, req MountRequest) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if req.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if req.Remount {
		if err := unix.Mount("", req.Target, "", flags|unix.MS_REMOUNT, MountData(req.FSType)); err != nil {
			return fmt.Errorf("cannot remount %s: %w", req.Target, err)
		}
		return nil
	}
	if err := os.MkdirAll(req.Target, 0o700); err != nil {
		return fmt.Errorf("cannot create the mount point: %w", err)
	}
	if err := mountAt(req.Source, req.Target, req.Target, req.FSType, req.ReadOnly, MountData(req.FSType)); err != nil {
		os.Remove(req.Target)
		return err
	}
	return nil
}

// mountAt mounts source at at (target is its name for errors) with
// nosuid, nodev and noexec, and the filesystem's data.
func mountAt(source, target, at, fstype string, ro bool, data string) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if ro {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(source, at, fstype, flags, data); err != nil {
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) && !ro {
			return fmt.Errorf("cannot mount %s: %w (%v)", source, ErrReadOnly, err)
		}
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("cannot mount %s: the kernel has no %s driver (modprobe %s)", source, fstype, fstype)
		}
		return fmt.Errorf("cannot mount %s on %s (%s): %w", source, target, fstype, err)
	}
	return nil
}

// openNoFollow opens directory path as an O_PATH descriptor, no component
// of it a symbolic link.
func openNoFollow(path string) (*os.File, error) { return nofollow.Open(path, unix.O_DIRECTORY) }

// fileOwner is the uid of a file.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// Unmount unmounts dir (never MNT_DETACH: a lazy unmount would say "safe
// to pull" while writes are still pending) and removes the mount point.
func (DirectMounter) Unmount(ctx context.Context, dir string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("cannot unmount %s: it is in use (a shell or a program has a file open there)", dir)
		}
		return fmt.Errorf("cannot unmount %s: %w", dir, err)
	}
	os.Remove(dir)
	return nil
}
