package firmware

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
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
	if err := unix.Mount(req.Source, req.Target, req.FSType, flags, MountData(req.FSType)); err != nil {
		os.Remove(req.Target)
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) && !req.ReadOnly {
			return fmt.Errorf("cannot mount %s: %w (%v)", req.Source, ErrReadOnly, err)
		}
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("cannot mount %s: the kernel has no %s driver (modprobe %s)", req.Source, req.FSType, req.FSType)
		}
		return fmt.Errorf("cannot mount %s (%s): %w", req.Source, req.FSType, err)
	}
	return nil
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
