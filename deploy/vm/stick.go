package vm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// StickKind is the layout of a USB stick image: the one recovery accepts,
// and the ones staging must refuse.
type StickKind int

const (
	// StickFAT32 is what recovery expects: an MBR with one FAT32 (LBA,
	// type 0x0c) partition at 1 MiB.
	StickFAT32 StickKind = iota
	// StickNoTable is FAT32 on the whole device, no partition table.
	StickNoTable
	// StickGPT is a GPT (protective MBR 0xee) with one FAT32 partition.
	StickGPT
	// StickFAT16 is an MBR partition (0x0e) with FAT16: FAT, not FAT32.
	StickFAT16
	// StickExt2 is an MBR partition (0x83) with ext2.
	StickExt2
	// StickRaw is an MBR FAT32 partition entry (0x0c) with no file system.
	StickRaw
	// StickFull is StickFAT32 with its free space filled (under 1 MiB left).
	StickFull
)

func (k StickKind) String() string {
	switch k {
	case StickFAT32:
		return "fat32"
	case StickNoTable:
		return "no-table"
	case StickGPT:
		return "gpt"
	case StickFAT16:
		return "fat16"
	case StickExt2:
		return "ext2"
	case StickRaw:
		return "raw"
	case StickFull:
		return "full"
	}
	return "stick(" + strconv.Itoa(int(k)) + ")"
}

// StickSpec describes a stick image to build.
type StickSpec struct {
	Kind    StickKind
	SizeMiB int    // default 64 (FAT32 needs at least 33)
	Label   string // volume label, default LABSTICK
}

const (
	sector    = 512
	partStart = 2048 // sectors: 1 MiB, where recovery and mkfs expect it
)

// MakeStick writes a stick image at path (replacing it).
func MakeStick(path string, spec StickSpec) error {
	if spec.SizeMiB == 0 {
		spec.SizeMiB = 64
	}
	if spec.Label == "" {
		spec.Label = "LABSTICK"
	}
	total := int64(spec.SizeMiB) * 1024 * 1024 / sector
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create stick image: %w", err)
	}
	err = f.Truncate(total * sector)
	if err == nil {
		switch spec.Kind {
		case StickFAT32, StickFull, StickRaw:
			err = writeMBR(f, 0x0c, partStart, total-partStart)
		case StickFAT16:
			err = writeMBR(f, 0x0e, partStart, total-partStart)
		case StickExt2:
			err = writeMBR(f, 0x83, partStart, total-partStart)
		case StickGPT:
			err = writeGPT(f, total)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write the partition table of %s: %w", path, err)
	}
	partKiB := (total - partStart) / 2
	switch spec.Kind {
	case StickFAT32, StickFull:
		err = run("mkfs.vfat", "-F", "32", "-n", spec.Label, "--offset="+strconv.Itoa(partStart), path, strconv.FormatInt(partKiB, 10))
	case StickFAT16:
		err = run("mkfs.vfat", "-F", "16", "-n", spec.Label, "--offset="+strconv.Itoa(partStart), path, strconv.FormatInt(partKiB, 10))
	case StickNoTable:
		err = run("mkfs.vfat", "-F", "32", "-n", spec.Label, path)
	case StickGPT:
		err = run("mkfs.vfat", "-F", "32", "-n", spec.Label, "--offset="+strconv.Itoa(partStart), path, strconv.FormatInt((total-34-partStart+1)/2, 10))
	case StickExt2:
		err = run("mke2fs", "-q", "-F", "-t", "ext2", "-L", spec.Label, "-E", "offset="+strconv.Itoa(partStart*sector), path, strconv.FormatInt(partKiB, 10)+"k")
	case StickRaw:
	default:
		err = fmt.Errorf("unknown kind %d", spec.Kind)
	}
	if err == nil && spec.Kind == StickFull {
		err = fillStick(path)
	}
	if err != nil {
		return fmt.Errorf("cannot make a %s stick: %w", spec.Kind, err)
	}
	return nil
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// writeMBR writes a classic MBR with one partition entry.
func writeMBR(f *os.File, typ byte, start, sectors int64) error {
	var mbr [sector]byte
	binary.LittleEndian.PutUint32(mbr[440:], 0x1ab0c5a1) // disk signature
	e := mbr[446:462]
	e[0] = 0x00                  // not bootable
	copy(e[1:4], "\xfe\xff\xff") // CHS: use LBA
	e[4] = typ
	copy(e[5:8], "\xfe\xff\xff")
	binary.LittleEndian.PutUint32(e[8:], uint32(start))
	binary.LittleEndian.PutUint32(e[12:], uint32(sectors))
	mbr[510], mbr[511] = 0x55, 0xaa
	_, err := f.WriteAt(mbr[:], 0)
	return err
}

// writeGPT writes a protective MBR, the primary and the backup GPT with one
// "Microsoft basic data" partition from 1 MiB to the last usable sector.
func writeGPT(f *os.File, total int64) error {
	if err := writeMBR(f, 0xee, 1, min(total-1, 0xffffffff)); err != nil {
		return err
	}
	basicData := []byte{0xa2, 0xa0, 0xd0, 0xeb, 0xe5, 0xb9, 0x33, 0x44, 0x87, 0xc0, 0x68, 0xb6, 0xb7, 0x26, 0x99, 0xc7}
	entries := make([]byte, 128*128)
	copy(entries[0:16], basicData)
	copy(entries[16:32], "boxagent-lab-p01") // unique partition GUID: fixed bytes
	binary.LittleEndian.PutUint64(entries[32:], partStart)
	binary.LittleEndian.PutUint64(entries[40:], uint64(total-34))
	for i, r := range "STICK" { // name, UTF-16LE
		binary.LittleEndian.PutUint16(entries[56+2*i:], uint16(r))
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	header := func(self, alt, entriesLBA int64) []byte {
		h := make([]byte, sector)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(self))
		binary.LittleEndian.PutUint64(h[32:], uint64(alt))
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], uint64(total-34))
		copy(h[56:72], "boxagent-lab-dsk") // disk GUID: fixed bytes
		binary.LittleEndian.PutUint64(h[72:], uint64(entriesLBA))
		binary.LittleEndian.PutUint32(h[80:], 128)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	for _, w := range []struct {
		off  int64
		data []byte
	}{
		{1, header(1, total-1, 2)}, {2, entries},
		{total - 33, entries}, {total - 1, header(total-1, 1, total-33)},
	} {
		if _, err := f.WriteAt(w.data, w.off*sector); err != nil {
			return err
		}
	}
	return nil
}

var bytesFree = regexp.MustCompile(`([0-9 ]+) bytes free`)

// fillStick fills a FAT32 stick's free space but for less than 1 MiB.
func fillStick(img string) error {
	out, err := StickDir(img, "/")
	if err != nil {
		return err
	}
	m := bytesFree.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("cannot find the free space in %q", out)
	}
	free, err := strconv.ParseInt(strings.ReplaceAll(m[1], " ", ""), 10, 64)
	if err != nil {
		return fmt.Errorf("cannot parse the free space: %w", err)
	}
	fill := free - 512*1024
	if fill <= 0 {
		return nil
	}
	tmp, err := os.CreateTemp("", "stick-fill-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Truncate(fill)
	tmp.Close()
	if err != nil {
		return err
	}
	off, err := PartitionOffset(img)
	if err != nil {
		return err
	}
	return run("mcopy", "-i", img+"@@"+strconv.FormatInt(off, 10), tmp.Name(), "::/FILLER.BIN")
}

// PartitionOffset returns the byte offset of an image's first MBR
// partition, or 0 for an image with no partition table.
func PartitionOffset(img string) (int64, error) {
	f, err := os.Open(img)
	if err != nil {
		return 0, fmt.Errorf("cannot open %s: %w", img, err)
	}
	defer f.Close()
	var mbr [sector]byte
	if _, err := io.ReadFull(f, mbr[:]); err != nil {
		return 0, fmt.Errorf("cannot read the MBR of %s: %w", img, err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return 0, errors.New("cannot find a partition table: no MBR signature")
	}
	// A FAT boot sector also ends in 55 aa; its jump instruction tells.
	if mbr[0] == 0xeb || mbr[0] == 0xe9 {
		return 0, nil
	}
	start := binary.LittleEndian.Uint32(mbr[446+8:])
	if mbr[446+4] == 0xee { // GPT: the first entry's start
		var e [8]byte
		if _, err := f.ReadAt(e[:], 2*sector+32); err != nil {
			return 0, fmt.Errorf("cannot read the GPT of %s: %w", img, err)
		}
		return int64(binary.LittleEndian.Uint64(e[:])) * sector, nil
	}
	return int64(start) * sector, nil
}
