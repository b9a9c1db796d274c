package firmware

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Disk is what Inspect found on a block device or image.
type Disk struct {
	Scheme     string      `json:"scheme"` // "mbr", "gpt", "superfloppy" (filesystem on the whole device) or "none"
	SectorSize int         `json:"sector_size"`
	Size       int64       `json:"size"`
	Partitions []Partition `json:"partitions,omitempty"`
}

// Partition is one partition (or, for a superfloppy, the whole device,
// with Index 0).
type Partition struct {
	Index    int    `json:"index"`          // as the kernel numbers it: sdX<Index>
	Start    int64  `json:"start"`          // bytes
	Size     int64  `json:"size"`           // bytes
	Type     string `json:"type,omitempty"` // MBR "0x0c" or GPT type GUID
	TypeName string `json:"type_name,omitempty"`
	Name     string `json:"name,omitempty"` // GPT partition name
	FS       string `json:"fs,omitempty"`   // fat12, fat16, fat32, exfat, ntfs, ext2, ext3, ext4; "" if unknown
	Label    string `json:"label,omitempty"`
}

// ErrPartitionTable means a partition table is present but unreadable.
var ErrPartitionTable = errors.New("bad partition table")

const sector = 512

// GPT partition type GUIDs boxagent names.
var gptTypeNames = map[string]string{
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI system",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
}

var mbrTypeNames = map[byte]string{
	0x01: "FAT12", 0x04: "FAT16 <32M", 0x05: "extended", 0x06: "FAT16",
	0x07: "NTFS/exFAT", 0x0b: "FAT32 (CHS)", 0x0c: "FAT32 (LBA)", 0x0e: "FAT16 (LBA)",
	0x0f: "extended (LBA)", 0x83: "Linux", 0x85: "Linux extended", 0xee: "GPT protective", 0xef: "EFI system",
}

// Inspect reads the partition table of a device or image of the given size
// and identifies the filesystem of each partition from its boot sector or
// superblock. It only reads.
func Inspect(r io.ReaderAt, size int64) (Disk, error) {
	d := Disk{Scheme: "none", SectorSize: sector, Size: size}
	s0 := make([]byte, sector)
	if size < sector || readFull(r, s0, 0) != nil {
		return d, nil
	}
	whole := Partition{Index: 0, Start: 0, Size: size}
	whole.FS, whole.Label = sniffFS(r, 0, size)
	hasMBRSig := s0[510] == 0x55 && s0[511] == 0xaa
	// A FAT, exFAT or NTFS boot sector at sector 0 is a superfloppy; an ext
	// superblock counts only without a boot signature (it has no boot sector).
	if whole.FS != "" && (!strings.HasPrefix(whole.FS, "ext") || !hasMBRSig) {
		d.Scheme = "superfloppy"
		d.Partitions = []Partition{whole}
		return d, nil
	}
	if !hasMBRSig {
		return d, nil
	}
	var ents [4][]byte
	for i := range ents {
		ents[i] = s0[446+16*i : 446+16*i+16]
		if ents[i][0] != 0 && ents[i][0] != 0x80 {
			return d, nil // not a partition table
		}
	}
	for _, e := range ents {
		if e[4] == 0xee {
			return inspectGPT(r, size)
		}
	}
	d.Scheme = "mbr"
	for i, e := range ents {
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:])) * sector
		n := int64(binary.LittleEndian.Uint32(e[12:])) * sector
		if typ == 0 || n == 0 {
			continue
		}
		if typ == 0x05 || typ == 0x0f || typ == 0x85 {
			d.Partitions = append(d.Partitions, logicals(r, size, start)...)
			continue
		}
		d.Partitions = append(d.Partitions, newMBRPart(r, size, i+1, typ, start, n))
	}
	return d, nil
}

func newMBRPart(r io.ReaderAt, size int64, idx int, typ byte, start, n int64) Partition {
	p := Partition{Index: idx, Start: start, Size: n, Type: fmt.Sprintf("0x%02x", typ), TypeName: mbrTypeNames[typ]}
	if start+n <= size {
		p.FS, p.Label = sniffFS(r, start, n)
	}
	return p
}

// logicals walks the chain of extended boot records starting at ext.
func logicals(r io.ReaderAt, size, ext int64) []Partition {
	var out []Partition
	b := make([]byte, sector)
	at := ext
	for i := 0; i < 128; i++ {
		if at+sector > size || readFull(r, b, at) != nil || b[510] != 0x55 || b[511] != 0xaa {
			break
		}
		e, next := b[446:462], b[462:478]
		if n := int64(binary.LittleEndian.Uint32(e[12:])) * sector; e[4] != 0 && n > 0 {
			start := at + int64(binary.LittleEndian.Uint32(e[8:]))*sector
			out = append(out, newMBRPart(r, size, 5+len(out), e[4], start, n))
		}
		rel := int64(binary.LittleEndian.Uint32(next[8:])) * sector
		if next[4] == 0 || rel == 0 {
			break
		}
		at = ext + rel
	}
	return out
}

// inspectGPT reads the primary GPT header, or the backup one if the primary
// is damaged, for 512- and 4096-byte logical sectors.
func inspectGPT(r io.ReaderAt, size int64) (Disk, error) {
	var firstErr error
	for _, ss := range []int64{512, 4096} {
		for _, lba := range []int64{1, size/ss - 1} {
			d, err := readGPT(r, size, ss, lba)
			if err == nil {
				return d, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return Disk{Scheme: "gpt", SectorSize: sector, Size: size}, firstErr
}

func readGPT(r io.ReaderAt, size, ss, lba int64) (Disk, error) {
	d := Disk{Scheme: "gpt", SectorSize: int(ss), Size: size}
	if lba < 1 || (lba+1)*ss > size {
		return d, fmt.Errorf("%w: gpt header out of range", ErrPartitionTable)
	}
	h := make([]byte, ss)
	if err := readFull(r, h, lba*ss); err != nil {
		return d, fmt.Errorf("%w: cannot read gpt header: %v", ErrPartitionTable, err)
	}
	if string(h[:8]) != "EFI PART" {
		return d, fmt.Errorf("%w: no gpt header at lba %d", ErrPartitionTable, lba)
	}
	hsize := binary.LittleEndian.Uint32(h[12:])
	if hsize < 92 || int64(hsize) > ss {
		return d, fmt.Errorf("%w: gpt header size %d", ErrPartitionTable, hsize)
	}
	want := binary.LittleEndian.Uint32(h[16:])
	hc := bytes.Clone(h[:hsize])
	clear(hc[16:20])
	if crc32.ChecksumIEEE(hc) != want {
		return d, fmt.Errorf("%w: gpt header checksum mismatch", ErrPartitionTable)
	}
	entLBA := int64(binary.LittleEndian.Uint64(h[72:]))
	num := int64(binary.LittleEndian.Uint32(h[80:]))
	esize := int64(binary.LittleEndian.Uint32(h[84:]))
	if esize < 128 || esize%8 != 0 || esize > 4096 || num > 4096 || num*esize > 1<<20 {
		return d, fmt.Errorf("%w: gpt entry array %d x %d", ErrPartitionTable, num, esize)
	}
	if entLBA < 0 || entLBA > size/ss || entLBA*ss+num*esize > size {
		return d, fmt.Errorf("%w: gpt entry array out of range", ErrPartitionTable)
	}
	arr := make([]byte, num*esize)
	if err := readFull(r, arr, entLBA*ss); err != nil {
		return d, fmt.Errorf("%w: cannot read gpt entries: %v", ErrPartitionTable, err)
	}
	if crc32.ChecksumIEEE(arr) != binary.LittleEndian.Uint32(h[88:]) {
		return d, fmt.Errorf("%w: gpt entry array checksum mismatch", ErrPartitionTable)
	}
	for i := int64(0); i < num; i++ {
		e := arr[i*esize : (i+1)*esize]
		if allZero(e[:16]) {
			continue
		}
		first := int64(binary.LittleEndian.Uint64(e[32:]))
		last := int64(binary.LittleEndian.Uint64(e[40:]))
		if first < 0 || last < first || last > size/ss {
			continue
		}
		typ := guidString(e[:16])
		p := Partition{Index: int(i) + 1, Start: first * ss, Size: (last - first + 1) * ss,
			Type: typ, TypeName: gptTypeNames[typ], Name: utf16Name(e[56:128])}
		if p.Start+p.Size <= size {
			p.FS, p.Label = sniffFS(r, p.Start, p.Size)
		}
		d.Partitions = append(d.Partitions, p)
	}
	return d, nil
}

// guidString formats a GPT GUID (first three fields little-endian).
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sniffFS identifies the filesystem at [start, start+n) from its boot sector
// or superblock.
func sniffFS(r io.ReaderAt, start, n int64) (fs, label string) {
	b := make([]byte, sector)
	if n < sector || readFull(r, b, start) != nil {
		return "", ""
	}
	switch string(b[3:11]) {
	case "EXFAT   ":
		return "exfat", ""
	case "NTFS    ":
		return "ntfs", ""
	}
	if fs, label, ok := parseBPB(b); ok {
		return fs, label
	}
	sb := make([]byte, 1024)
	if n >= 2048 && readFull(r, sb, start+1024) == nil && binary.LittleEndian.Uint16(sb[56:]) == 0xef53 {
		compat := binary.LittleEndian.Uint32(sb[92:])
		incompat := binary.LittleEndian.Uint32(sb[96:])
		label := strings.TrimRight(string(sb[120:136]), "\x00")
		switch {
		case incompat&(0x40|0x80|0x200) != 0: // extents, 64bit, flex_bg
			return "ext4", label
		case compat&0x4 != 0: // has_journal
			return "ext3", label
		}
		return "ext2", label
	}
	return "", ""
}

// parseBPB recognises a FAT boot sector and tells FAT12/16/32 apart: FAT32
// when the 16-bit FAT size and root entry count are zero (as Linux does),
// otherwise by cluster count (Microsoft's rule).
func parseBPB(b []byte) (fs, label string, ok bool) {
	if !(b[0] == 0xeb || b[0] == 0xe9) || b[510] != 0x55 || b[511] != 0xaa {
		return "", "", false
	}
	bps := int64(binary.LittleEndian.Uint16(b[11:]))
	spc := int64(b[13])
	rsvd := int64(binary.LittleEndian.Uint16(b[14:]))
	nfats := int64(b[16])
	rootEnt := int64(binary.LittleEndian.Uint16(b[17:]))
	tot := int64(binary.LittleEndian.Uint16(b[19:]))
	fatsz := int64(binary.LittleEndian.Uint16(b[22:]))
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 ||
		rsvd == 0 || nfats < 1 || nfats > 2 || b[21] < 0xf0 && b[21] != 0 {
		return "", "", false
	}
	if tot == 0 {
		tot = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	if fatsz == 0 && rootEnt == 0 {
		if binary.LittleEndian.Uint32(b[36:]) == 0 {
			return "", "", false
		}
		return "fat32", bpbLabel(b[66], b[71:82]), true
	}
	if fatsz == 0 {
		return "", "", false
	}
	rootSecs := (rootEnt*32 + bps - 1) / bps
	data := tot - rsvd - nfats*fatsz - rootSecs
	if data <= 0 {
		return "", "", false
	}
	if data/spc < 4085 {
		return "fat12", bpbLabel(b[38], b[43:54]), true
	}
	return "fat16", bpbLabel(b[38], b[43:54]), true
}

func bpbLabel(extSig byte, raw []byte) string {
	if extSig != 0x29 {
		return ""
	}
	l := strings.TrimRight(string(raw), " \x00")
	if l == "NO NAME" {
		return ""
	}
	return l
}
