package firmware

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors for sticks the board's recovery cannot read.
var (
	ErrUnsupportedFS = errors.New("filesystem not readable by recovery")
	ErrNoFilesystem  = errors.New("no filesystem on the stick")
)

// MaxFAT32File is the largest file FAT32 can hold.
const MaxFAT32File = 1<<32 - 1

// StickError is a refusal with a message meant for the user (it says what to
// do); errors.Is matches its Reason (ErrUnsupportedFS, ErrNoFilesystem).
type StickError struct {
	Reason error
	Msg    string
}

func (e *StickError) Error() string { return e.Msg }
func (e *StickError) Unwrap() error { return e.Reason }

var fsDisplay = map[string]string{
	"fat12": "FAT12", "fat16": "FAT16", "fat32": "FAT32", "exfat": "exFAT",
	"ntfs": "NTFS", "ext2": "ext2", "ext3": "ext3", "ext4": "ext4",
}

// mountAliases expands the mount types board profiles name (the
// [firmware] filesystem) to the filesystems Inspect reports.
var mountAliases = map[string][]string{
	"vfat": {"fat32", "fat16"},
	"ext4": {"ext4", "ext3", "ext2"},
}

// MountType is the kernel filesystem type to mount the partition with
// ("vfat", "exfat", "ntfs3", "ext4"), or "" when the filesystem is unknown.
func (p Partition) MountType() string {
	switch p.FS {
	case "fat12", "fat16", "fat32":
		return "vfat"
	case "ext2", "ext3", "ext4":
		return "ext4"
	case "ntfs":
		return "ntfs3"
	}
	return p.FS
}

func displayFS(fs string) string {
	if n, ok := fsDisplay[fs]; ok {
		return n
	}
	return fs
}

// Pick returns the partition staging should use: the first one whose
// filesystem is among allowed, which holds filesystems as Inspect names
// them ("fat32") or mount types as board profiles name them ("vfat" is
// FAT16 or FAT32, "ext4" is ext2/3/4); "fat32" when empty. Otherwise it
// explains, in words for the user, why the stick does not fit.
func (d Disk) Pick(allowed ...string) (Partition, error) {
	if len(allowed) == 0 {
		allowed = []string{"fat32"}
	}
	var fss []string
	for _, a := range allowed {
		if more, ok := mountAliases[a]; ok {
			fss = append(fss, more...)
		} else {
			fss = append(fss, a)
		}
	}
	for _, p := range d.Partitions {
		if slices.Contains(fss, p.FS) {
			return p, nil
		}
	}
	want := displayFS(fss[0])
	for _, p := range d.Partitions {
		if p.FS != "" {
			return Partition{}, &StickError{ErrUnsupportedFS,
				fmt.Sprintf("%s is not readable by this board's recovery; format the stick %s", displayFS(p.FS), want)}
		}
	}
	var msg string
	switch {
	case len(d.Partitions) == 0 && d.Scheme == "none":
		msg = fmt.Sprintf("the stick has no partition table and no filesystem; format it %s", want)
	case len(d.Partitions) == 0:
		msg = fmt.Sprintf("the stick's %s partition table has no partitions; create one and format it %s", strings.ToUpper(d.Scheme), want)
	case d.Scheme == "gpt":
		msg = fmt.Sprintf("GPT stick without a %s partition; format the stick %s (an MBR partition table is the safest)", want, want)
	default:
		msg = fmt.Sprintf("no partition on the stick holds a filesystem this board's recovery can read; format the stick %s", want)
	}
	return Partition{}, &StickError{ErrNoFilesystem, msg}
}
