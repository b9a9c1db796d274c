package firmware

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The mount helper is the root side of TemplateMounter: PID 1 runs it as
// boxagent-mount@INSTANCE.service (ExecStart mounts, ExecStop unmounts).
// The agent's user may start and stop those units and no others (the
// polkit rule names them), so what it can make root do is exactly this:
// mount the FAT, exFAT, NTFS or ext4 partition of a USB disk, nosuid,
// nodev, noexec, at /run/boxagent/usb/<the stick's id>, its files owned by
// the agent's user; and unmount it. Everything is derived here from the
// instance name and sysfs, nothing is taken from the agent as a path or an
// option, and no path through the agent's writable folders is followed
// through a symbolic link.

// splitMountInstance splits an instance name into the mode, "ro" or
// "rw", and after a '-' a partition (or a whole disk without a partition
// table) of an sd disk: "sd", 1 to 3 lowercase ASCII letters, up to 3
// ASCII digits ("rw-sda1", "ro-sdb").
func splitMountInstance(instance string) (mode, dev string, ok bool) {
	mode, dev, _ = strings.Cut(instance, "-")
	disk, sd := strings.CutPrefix(dev, "sd")
	part := strings.TrimLeft(disk, "abcdefghijklmnopqrstuvwxyz")
	letters := len(disk) - len(part)
	if (mode != "ro" && mode != "rw") || !sd || letters < 1 || letters > 3 ||
		len(part) > 3 || strings.Trim(part, "0123456789") != "" {
		return "", "", false
	}
	return mode, dev, true
}

// MountInstance is the instance of boxagent-mount@.service that mounts
// device dev ("sda1") read-only or read-write.
func MountInstance(readOnly bool, dev string) string {
	if readOnly {
		return "ro-" + dev
	}
	return "rw-" + dev
}

// ParseMountInstance is MountInstance's inverse; it refuses any other
// name.
func ParseMountInstance(instance string) (dev string, readOnly bool, err error) {
	mode, dev, ok := splitMountInstance(instance)
	if !ok {
		return "", false, fmt.Errorf("%q is not a mount instance like rw-sda1 or ro-sdb", instance)
	}
	return dev, mode == "ro", nil
}

// Owner is who owns the files of a FAT, exFAT or NTFS mount: the agent's
// user and group.
type Owner struct{ UID, GID int }

// HelperMount mounts the stick partition instance names, as root. The
// mount point is MountBase/<stick id>, the directory the agent stages
// into; MountBase and its parent must be real directories (not links)
// owned by root or the owner.
func HelperMount(ctx context.Context, hp HostPaths, instance string, owner Owner) (string, error) {
	dev, ro, err := ParseMountInstance(instance)
	if err != nil {
		return "", err
	}
	st, part, err := stickOf(hp, dev)
	if err != nil {
		return "", err
	}
	fstype := part.MountType()
	switch fstype {
	case "vfat", "exfat", "ntfs3", "ext4":
	default:
		return "", fmt.Errorf("%s holds %q, not a filesystem a stick is mounted with (FAT, exFAT, NTFS, ext4)", dev, part.FS)
	}
	if err := checkOwnedDirs(hp.MountBase, owner); err != nil {
		return "", err
	}
	target := filepath.Join(hp.MountBase, st.ID())
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("cannot create the mount point: %w", err)
	}
	// Mounted through a descriptor of the directory opened without
	// following any link, so that the agent's user cannot swap a link in
	// between the check and the mount. The mount point stays root's; the
	// agent, owning its parent, removes it after the unmount.
	if err := checkOwnedDirs(target, owner); err != nil {
		return "", err
	}
	dir, err := openNoFollow(target)
	if err != nil {
		return "", err
	}
	defer dir.Close()
	if err := mountAt(filepath.Join(hp.Dev, dev), target, fmt.Sprintf("/proc/self/fd/%d", dir.Fd()), fstype, ro, stickMountData(fstype, owner)); err != nil {
		return "", err
	}
	return target, nil
}

// stickMountData is the filesystem data of a stick's mount: MountData,
// and for the filesystems without owners (FAT, exFAT, NTFS) the agent's
// user as the owner of every file, unreadable to others.
func stickMountData(fstype string, owner Owner) string {
	data := MountData(fstype)
	if fstype == "ext4" {
		return data
	}
	return strings.TrimPrefix(fmt.Sprintf("%s,uid=%d,gid=%d,umask=0077", data, owner.UID, owner.GID), ",")
}

// HelperUnmount unmounts what HelperMount mounted for instance, if it is
// still mounted; the device may be gone (the stick pulled).
func HelperUnmount(ctx context.Context, hp HostPaths, instance string) error {
	dev, _, err := ParseMountInstance(instance)
	if err != nil {
		return err
	}
	all, err := Mounts(hp)
	if err != nil {
		return err
	}
	src := filepath.Join(hp.Dev, dev)
	for _, m := range all {
		if m.Source == src && filepath.Dir(m.Dir) == hp.MountBase {
			return DirectMounter{}.Unmount(ctx, m.Dir)
		}
	}
	return nil
}

// stickOf finds the USB stick dev belongs to and its partition.
func stickOf(hp HostPaths, dev string) (Stick, Partition, error) {
	sticks, err := Scan(hp)
	if err != nil {
		return Stick{}, Partition{}, err
	}
	for _, st := range sticks {
		if !strings.HasPrefix(dev, st.Name) {
			continue
		}
		if p, ok := st.Partition(dev); ok {
			return st, p, nil
		}
	}
	return Stick{}, Partition{}, fmt.Errorf("%w: %s is not a partition of a USB stick", ErrNoStick, dev)
}

// checkOwnedDirs checks that dir and its parent are directories, not
// symbolic links, owned by root or the owner: a link the agent's user
// planted there must not make root mount elsewhere.
func checkOwnedDirs(dir string, owner Owner) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("cannot check %s: %w", d, err)
		}
		uid := fileOwner(fi)
		if !fi.IsDir() || fi.Mode()&os.ModeSymlink != 0 || uid != 0 && uid != owner.UID {
			return fmt.Errorf("%s is not a directory of root's or the agent's (a link, or another user's): refusing to mount there", d)
		}
	}
	return nil
}
