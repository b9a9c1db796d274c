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

func displayFS(fs string) string {
	if n, ok := fsDisplay[fs]; ok {
		return n
	}
	return fs
}

// Pick returns the partition staging should use: the first one whose
// filesystem is among allowed (the board profile's list; "fat32" when
// empty). Otherwise it explains, in words for the user, why the stick does
// not fit.
func (d Disk) Pick(allowed ...string) (Partition, error) {
	if len(allowed) == 0 {
		allowed = []string{"fat32"}
	}
	for _, p := range d.Partitions {
		if slices.Contains(allowed, p.FS) {
			return p, nil
		}
	}
	want := displayFS(allowed[0])
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
