package firmware

import (
	"errors"
	"testing"
)

// Sticks as Scan reports them: an MBR stick with an exFAT and a FAT32
// partition, a superfloppy, and an SD card (partitions named p1).
var (
	mbrStick = Stick{Name: "sda", Disk: Disk{Scheme: "mbr", Partitions: []Partition{{Index: 1, FS: "exfat"}, {Index: 2, FS: "fat32"}}}}
	floppy   = Stick{Name: "sdb", Disk: Disk{Scheme: "superfloppy", Partitions: []Partition{{Index: 0, FS: "fat32"}}}}
	sdCard   = Stick{Name: "mmcblk0", Disk: Disk{Scheme: "mbr", Partitions: []Partition{{Index: 1, FS: "fat32"}}}}
	bare     = Stick{Name: "sdc", Disk: Disk{Scheme: "none"}}
)

func TestChooseStick(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sticks []Stick
		dev    string
		want   string // the stick's name; "" when refused
		err    error
		msg    string
	}{
		{"the only one", []Stick{mbrStick}, "", "sda", nil, ""},
		{"none", nil, "", "", ErrNoStick, "no USB stick is plugged in"},
		{"several", []Stick{mbrStick, floppy, sdCard}, "", "", ErrSeveralSticks, "several USB sticks are plugged in (sda, sdb, mmcblk0)"},
		{"by disk", []Stick{mbrStick, floppy}, "sdb", "sdb", nil, ""},
		{"by /dev/ disk", []Stick{mbrStick, floppy}, "/dev/sdb", "sdb", nil, ""},
		{"by partition", []Stick{floppy, mbrStick}, "sda2", "sda", nil, ""},
		{"by /dev/ partition", []Stick{floppy, mbrStick}, "/dev/sda1", "sda", nil, ""},
		{"by SD card partition", []Stick{mbrStick, sdCard}, "mmcblk0p1", "mmcblk0", nil, ""},
		{"named, absent", []Stick{mbrStick}, "sdd", "", ErrNoStick, "no USB stick: no USB stick sdd"},
		{"named partition, absent", []Stick{mbrStick}, "sda3", "", ErrNoStick, "no USB stick: no USB stick sda3"},
		{"named, none plugged in", nil, "/dev/sda1", "", ErrNoStick, "no USB stick: no USB stick sda1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ChooseStick(tt.sticks, tt.dev)
			if tt.err == nil {
				if err != nil || st.Name != tt.want {
					t.Fatalf("ChooseStick(%q) = %s, %v; want %s", tt.dev, st.Name, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) || err.Error() != tt.msg {
				t.Fatalf("ChooseStick(%q) = %s, %v; want %q (%v)", tt.dev, st.Name, err, tt.msg, tt.err)
			}
		})
	}
}

func TestChoosePartition(t *testing.T) {
	fat := Target{Filesystems: []string{"vfat"}}
	for _, tt := range []struct {
		name  string
		st    Stick
		dev   string
		t     Target
		index int    // the partition's Index
		want  string // its kernel name; "" when refused
		err   error
		msg   string
	}{
		{"picked", mbrStick, "", fat, 2, "sda2", nil, ""},
		{"the disk named: picked", mbrStick, "sda", fat, 2, "sda2", nil, ""},
		{"the /dev/ disk named: picked", mbrStick, "/dev/sda", fat, 2, "sda2", nil, ""},
		{"picked by the board's filesystem", mbrStick, "", Target{Filesystems: []string{"exfat"}}, 1, "sda1", nil, ""},
		{"named", mbrStick, "sda2", fat, 2, "sda2", nil, ""},
		{"named with /dev/", mbrStick, "/dev/sda2", fat, 2, "sda2", nil, ""},
		// Its filesystem is Stage's to refuse, with the stick in hand.
		{"named, not recovery's", mbrStick, "sda1", fat, 1, "sda1", nil, ""},
		{"superfloppy", floppy, "", fat, 0, "sdb", nil, ""},
		{"superfloppy named", floppy, "sdb", fat, 0, "sdb", nil, ""},
		{"SD card", sdCard, "", fat, 1, "mmcblk0p1", nil, ""},
		{"not a partition", mbrStick, "sda3", fat, 0, "", ErrNoStick, "no USB stick: sda3 is not a partition of sda"},
		{"another stick's", mbrStick, "sdb1", fat, 0, "", ErrNoStick, "no USB stick: sdb1 is not a partition of sda"},
		{"nothing recovery reads", mbrStick, "", Target{Filesystems: []string{"ext4"}}, 0, "", ErrUnsupportedFS,
			"exFAT is not readable by this board's recovery; format the stick ext4"},
		{"no filesystem", bare, "", fat, 0, "", ErrNoFilesystem, "the stick has no partition table and no filesystem; format it FAT32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, dev, err := ChoosePartition(tt.st, tt.dev, tt.t)
			if tt.err == nil {
				if err != nil || dev != tt.want || p.Index != tt.index {
					t.Fatalf("ChoosePartition(%s, %q) = %+v, %q, %v; want partition %d, %q", tt.st.Name, tt.dev, p, dev, err, tt.index, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) || err.Error() != tt.msg || dev != "" {
				t.Fatalf("ChoosePartition(%s, %q) = %q, %v; want %q (%v)", tt.st.Name, tt.dev, dev, err, tt.msg, tt.err)
			}
		})
	}
}

// TestStageChooses: Stage's choice is ChoosePartition's, and it refuses
// besides a stick it could not read and a named partition recovery cannot
// read, before anything is written.
func TestStageChooses(t *testing.T) {
	fat := Target{Filesystems: []string{"vfat"}}
	if _, dev, err := choose(mbrStick, "/dev/sda", fat); err != nil || dev != "sda2" {
		t.Errorf("choose(sda) = %q, %v", dev, err)
	}
	if _, _, err := choose(mbrStick, "sda1", fat); !errors.Is(err, ErrUnsupportedFS) {
		t.Errorf("choose(exFAT sda1) = %v, want %v", err, ErrUnsupportedFS)
	}
	broken := mbrStick
	broken.Problem = "input/output error"
	var se *StickError
	if _, _, err := choose(broken, "sda2", fat); !errors.As(err, &se) || !errors.Is(err, ErrNoFilesystem) || se.Msg != "cannot read the stick sda: input/output error" {
		t.Errorf("choose(unreadable) = %v", err)
	}
}
