package firmware

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Zip record signatures and sizes (APPNOTE.TXT).
const (
	sigLocal     = 0x04034b50 // PK\x03\x04
	sigCentral   = 0x02014b50 // PK\x01\x02
	sigEOCD      = 0x06054b50 // PK\x05\x06
	sigZip64Loc  = 0x07064b50 // PK\x06\x07
	sigDataDesc  = 0x08074b50 // PK\x07\x08
	eocdLen      = 22
	centralLen   = 46
	localLen     = 30
	maxComment   = 0xffff
	maxCentral   = 64 << 20 // a central directory larger than this is refused
	flagEncrypt  = 1 << 0
	flagDataDesc = 1 << 3
)

var eocdMagic = []byte{'P', 'K', 5, 6}

// zipInfo is what the structure check learned about a package.
type zipInfo struct {
	EOCD       int64 // offset of the end-of-central-directory record
	CommentLen int
	CDOffset   int64
	CDSize     int64
	Names      []string
}

type centralEntry struct {
	name         string
	flags        uint16
	method       uint16
	crc          uint32
	csize, usize uint32
	offset       uint32
}

func structErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrStructure, fmt.Sprintf(format, a...))
}

// readTail returns the last min(size, n) bytes of r.
func readTail(r io.ReaderAt, size int64, n int64) ([]byte, error) {
	n = min(n, size)
	buf := make([]byte, n)
	if err := readFull(r, buf, size-n); err != nil {
		return nil, fmt.Errorf("cannot read package tail: %w", err)
	}
	return buf, nil
}

// findEOCD locates the single end-of-central-directory record in tail, the
// last bytes of a file. The record must be the only one whose comment runs
// exactly to the end of the file, and no EOCD signature may follow it: a
// second record hidden in the comment is the classic attack on signapk's
// whole-file signature, which leaves the comment unsigned.
func findEOCD(tail []byte) (pos int, err error) {
	pos = -1
	for i := len(tail) - eocdLen; i >= 0; i-- {
		if !bytes.Equal(tail[i:i+4], eocdMagic) {
			continue
		}
		clen := int(binary.LittleEndian.Uint16(tail[i+20:]))
		if i+eocdLen+clen != len(tail) {
			continue
		}
		if pos >= 0 {
			return -1, structErr("more than one end-of-central-directory record")
		}
		pos = i
	}
	if pos < 0 {
		return -1, structErr("no end-of-central-directory record (not a zip, or truncated)")
	}
	if bytes.Contains(tail[pos+4:], eocdMagic) {
		return -1, structErr("EOCD marker occurs after start of EOCD")
	}
	return pos, nil
}

// checkZip checks the structure of the zip package in r: one EOCD record,
// no zip64, a central directory that matches the local headers, entries that
// tile the file without gaps or overlaps, safe and unique names, and the
// required entries present.
func checkZip(r io.ReaderAt, size int64, required []string) (zipInfo, error) {
	var zi zipInfo
	if err := checkHead(r, size); err != nil {
		return zi, err
	}
	tail, err := readTail(r, size, eocdLen+maxComment)
	if err != nil {
		return zi, err
	}
	pos, err := findEOCD(tail)
	if err != nil {
		return zi, err
	}
	e := tail[pos:]
	zi.EOCD = size - int64(len(tail)) + int64(pos)
	disk := binary.LittleEndian.Uint16(e[4:])
	cdDisk := binary.LittleEndian.Uint16(e[6:])
	nDisk := binary.LittleEndian.Uint16(e[8:])
	nTotal := binary.LittleEndian.Uint16(e[10:])
	cdSize := binary.LittleEndian.Uint32(e[12:])
	cdOff := binary.LittleEndian.Uint32(e[16:])
	zi.CommentLen = int(binary.LittleEndian.Uint16(e[20:]))
	if nTotal == 0xffff || cdSize == 0xffffffff || cdOff == 0xffffffff || hasZip64Locator(r, zi.EOCD) {
		return zi, structErr("zip64 packages are not supported (recovery and FAT32 need a zip32 package under 4 GiB)")
	}
	if disk != 0 || cdDisk != 0 || nDisk != nTotal {
		return zi, structErr("multi-disk (spanned) zip")
	}
	zi.CDOffset, zi.CDSize = int64(cdOff), int64(cdSize)
	if zi.CDOffset+zi.CDSize != zi.EOCD {
		return zi, structErr("central directory (offset %d, size %d) does not end at the EOCD record (offset %d)", cdOff, cdSize, zi.EOCD)
	}
	if zi.CDSize > maxCentral {
		return zi, structErr("central directory of %d bytes is too large", cdSize)
	}
	cd := make([]byte, zi.CDSize)
	if err := readFull(r, cd, zi.CDOffset); err != nil {
		return zi, fmt.Errorf("cannot read central directory: %w", err)
	}
	if bytes.Contains(cd, eocdMagic) {
		return zi, structErr("EOCD marker inside the central directory")
	}
	entries, err := parseCentral(cd, int(nTotal))
	if err != nil {
		return zi, err
	}
	if err := checkLocals(r, entries, zi.CDOffset); err != nil {
		return zi, err
	}
	zi.Names = make([]string, len(entries))
	for i, ce := range entries {
		zi.Names[i] = ce.name
	}
	for _, req := range required {
		if !slices.Contains(zi.Names, req) {
			return zi, fmt.Errorf("%w: %s", ErrMissingEntry, req)
		}
	}
	return zi, nil
}

// checkHead refuses a file that does not start like a zip: a local file
// header, or the EOCD record of an empty zip.
func checkHead(r io.ReaderAt, size int64) error {
	var b [4]byte
	if size < eocdLen || readFull(r, b[:], 0) != nil {
		return structErr("file of %d bytes is too short for a zip", size)
	}
	if sig := binary.LittleEndian.Uint32(b[:]); sig != sigLocal && sig != sigEOCD {
		return structErr("not a zip file (no local file header at offset 0)")
	}
	return nil
}

func hasZip64Locator(r io.ReaderAt, eocd int64) bool {
	if eocd < 20 {
		return false
	}
	var b [4]byte
	if readFull(r, b[:], eocd-20) != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) == sigZip64Loc
}

// parseCentral parses n central directory headers that must fill cd exactly.
func parseCentral(cd []byte, n int) ([]centralEntry, error) {
	entries := make([]centralEntry, 0, n)
	seen := make(map[string]bool, n)
	for len(cd) > 0 {
		if len(cd) < centralLen || binary.LittleEndian.Uint32(cd) != sigCentral {
			return nil, structErr("bad central directory header at entry %d", len(entries))
		}
		nameLen := int(binary.LittleEndian.Uint16(cd[28:]))
		extraLen := int(binary.LittleEndian.Uint16(cd[30:]))
		commentLen := int(binary.LittleEndian.Uint16(cd[32:]))
		total := centralLen + nameLen + extraLen + commentLen
		if total > len(cd) {
			return nil, structErr("central directory header %d runs past the directory", len(entries))
		}
		ce := centralEntry{
			name:   string(cd[centralLen : centralLen+nameLen]),
			flags:  binary.LittleEndian.Uint16(cd[8:]),
			method: binary.LittleEndian.Uint16(cd[10:]),
			crc:    binary.LittleEndian.Uint32(cd[16:]),
			csize:  binary.LittleEndian.Uint32(cd[20:]),
			usize:  binary.LittleEndian.Uint32(cd[24:]),
			offset: binary.LittleEndian.Uint32(cd[42:]),
		}
		if binary.LittleEndian.Uint16(cd[34:]) != 0 {
			return nil, structErr("entry %q is on another disk", ce.name)
		}
		if ce.csize == 0xffffffff || ce.usize == 0xffffffff || ce.offset == 0xffffffff {
			return nil, structErr("entry %q needs zip64, which is not supported", ce.name)
		}
		if err := checkName(ce.name); err != nil {
			return nil, err
		}
		if seen[ce.name] {
			return nil, structErr("duplicate entry %q", ce.name)
		}
		seen[ce.name] = true
		if ce.flags&flagEncrypt != 0 {
			return nil, structErr("entry %q is encrypted", ce.name)
		}
		if ce.method != 0 && ce.method != 8 {
			return nil, structErr("entry %q uses compression method %d (only stored and deflate are readable by recovery)", ce.name, ce.method)
		}
		entries = append(entries, ce)
		cd = cd[total:]
	}
	if len(entries) != n {
		return nil, structErr("central directory has %d entries, EOCD says %d", len(entries), n)
	}
	return entries, nil
}

// checkName refuses entry names that could escape the extraction root or
// mean different files on different systems.
func checkName(name string) error {
	switch {
	case name == "":
		return structErr("empty entry name")
	case strings.ContainsRune(name, 0):
		return structErr("entry name %q contains NUL", name)
	case strings.ContainsRune(name, '\\'):
		return structErr("entry name %q contains a backslash", name)
	case strings.HasPrefix(name, "/"):
		return structErr("entry name %q is absolute", name)
	case len(name) >= 2 && name[1] == ':':
		return structErr("entry name %q has a drive letter", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return structErr("entry name %q has a .. component", name)
		}
	}
	return nil
}

// checkLocals reads every local header and checks that it agrees with its
// central directory entry and that the entries tile [0, cdOffset) exactly.
func checkLocals(r io.ReaderAt, entries []centralEntry, cdOffset int64) error {
	order := slices.Clone(entries)
	slices.SortFunc(order, func(a, b centralEntry) int { return cmp.Compare(a.offset, b.offset) })
	var next int64
	hdr := make([]byte, localLen)
	for _, ce := range order {
		if int64(ce.offset) != next {
			return structErr("entry %q starts at %d, expected %d (gap or overlap)", ce.name, ce.offset, next)
		}
		if err := readFull(r, hdr, int64(ce.offset)); err != nil {
			return structErr("cannot read local header of %q: %v", ce.name, err)
		}
		if binary.LittleEndian.Uint32(hdr) != sigLocal {
			return structErr("bad local header for %q", ce.name)
		}
		flags := binary.LittleEndian.Uint16(hdr[6:])
		method := binary.LittleEndian.Uint16(hdr[8:])
		nameLen := int64(binary.LittleEndian.Uint16(hdr[26:]))
		extraLen := int64(binary.LittleEndian.Uint16(hdr[28:]))
		if method != ce.method || flags&flagDataDesc != ce.flags&flagDataDesc {
			return structErr("local header of %q disagrees with the central directory", ce.name)
		}
		if flags&flagDataDesc == 0 {
			if binary.LittleEndian.Uint32(hdr[14:]) != ce.crc ||
				binary.LittleEndian.Uint32(hdr[18:]) != ce.csize ||
				binary.LittleEndian.Uint32(hdr[22:]) != ce.usize {
				return structErr("local sizes of %q disagree with the central directory", ce.name)
			}
		}
		name := make([]byte, nameLen)
		if err := readFull(r, name, int64(ce.offset)+localLen); err != nil {
			return structErr("cannot read local name of %q: %v", ce.name, err)
		}
		if string(name) != ce.name {
			return structErr("local name %q disagrees with central name %q", name, ce.name)
		}
		next = int64(ce.offset) + localLen + nameLen + extraLen + int64(ce.csize)
		if flags&flagDataDesc != 0 {
			n, err := dataDescLen(r, next)
			if err != nil {
				return structErr("cannot read data descriptor of %q: %v", ce.name, err)
			}
			next += n
		}
		if next > cdOffset {
			return structErr("entry %q runs into the central directory", ce.name)
		}
	}
	if next != cdOffset {
		return structErr("%d unaccounted bytes before the central directory", cdOffset-next)
	}
	return nil
}

// dataDescLen returns the length of the data descriptor at off: 16 bytes
// with its optional signature, 12 without.
func dataDescLen(r io.ReaderAt, off int64) (int64, error) {
	var b [4]byte
	if err := readFull(r, b[:], off); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint32(b[:]) == sigDataDesc {
		return 16, nil
	}
	return 12, nil
}
