package firmware

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// ExtraSpec is a file a board's recovery needs at the stick's root beside
// the package (Amlogic: aml_autoscript, which U-Boot runs from the
// stick, and factory_update_param.aml, which tells recovery what to
// install).
type ExtraSpec struct {
	Name string
	// Default is the file's bytes from the board profile, used when the
	// package carries no file of that name; nil: the package must.
	Default []byte
}

// ExtraFile is an extra file as it is (or will be) staged.
type ExtraFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Source is "package" (an entry of that name at the package's root:
	// the vendor's own, made for this very firmware) or "profile" (the
	// board profile's).
	Source string `json:"source"`
	data   []byte
}

// MaxExtraFile bounds an extra file: they are scripts and parameter
// files, read whole into memory.
const MaxExtraFile = 1 << 20

// ErrMissingExtra: the board's recovery needs a file beside the package
// that neither the package nor the board profile provides.
var ErrMissingExtra = errors.New("a file the board's recovery needs is missing")

// resolveExtras finds the bytes of each extra file for the package in r:
// an entry of the same name (without case: FAT has none) at the package's
// root wins, else the spec's Default; neither is ErrMissingExtra.
func resolveExtras(r io.ReaderAt, size int64, specs []ExtraSpec) ([]ExtraFile, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if len(specs) > 9 {
		return nil, fmt.Errorf("%w: %d extra files; staging writes at most 9 beside the package", ErrPolicy, len(specs))
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read the package's entries: %v", ErrStructure, err)
	}
	var out []ExtraFile
	for _, sp := range specs {
		x := ExtraFile{Name: sp.Name}
		var entry *zip.File
		for _, f := range zr.File {
			if strings.EqualFold(f.Name, sp.Name) && !f.FileInfo().IsDir() {
				entry = f
				break
			}
		}
		switch {
		case entry != nil:
			if entry.UncompressedSize64 > MaxExtraFile {
				return nil, fmt.Errorf("%w: the package's %s has %d bytes, more than an extra file may (%d)", ErrStructure, entry.Name, entry.UncompressedSize64, MaxExtraFile)
			}
			rc, err := entry.Open()
			if err != nil {
				return nil, fmt.Errorf("%w: cannot read %s from the package: %v", ErrStructure, entry.Name, err)
			}
			// archive/zip checks the entry's CRC-32 at its end.
			x.data, err = io.ReadAll(io.LimitReader(rc, MaxExtraFile+1))
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("%w: cannot read %s from the package: %v", ErrStructure, entry.Name, err)
			}
			x.Source = "package"
		case sp.Default != nil:
			x.data, x.Source = sp.Default, "profile"
		default:
			return nil, fmt.Errorf("%w: %s goes beside the package on the stick, and neither the package nor the board profile has it", ErrMissingExtra, sp.Name)
		}
		sum := sha256.Sum256(x.data)
		x.Size, x.SHA256 = int64(len(x.data)), hex.EncodeToString(sum[:])
		out = append(out, x)
	}
	return out, nil
}

// PlanExtras says which extra files a staging of the artifact sha for t
// writes, with their bytes' SHA-256 and where they come from; a file
// nobody provides is ErrMissingExtra, before anything is written.
func (s *Stager) PlanExtras(sha string, t Target) ([]ExtraFile, error) {
	f, art, err := s.Store.Open(sha)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return resolveExtras(f, art.Size, t.Extra)
}

// stageExtra writes one extra file as the package is written: under its
// temporary name, fsynced, dropped from the cache, read back from the
// stick and compared with its SHA-256, and only then put under its name
// (an old file of that name removed first, as its own synced step: FAT
// has no atomic rename-over).
func (s *Stager) stageExtra(ctx context.Context, dir, tmp string, x ExtraFile) error {
	tpath, final := filepath.Join(dir, tmp), filepath.Join(dir, x.Name)
	art := Artifact{SHA256: x.SHA256, Size: x.Size}
	if err := s.write(ctx, bytes.NewReader(x.data), art, tpath, func(StageProgress) {}); err != nil {
		return err
	}
	f, err := os.Open(tpath)
	if err != nil {
		return s.ioErr("cannot read back "+tmp, err)
	}
	sum, err := hashReaderAt(f, x.Size)
	f.Close()
	if err != nil {
		return s.ioErr("cannot read back "+tmp, err)
	}
	if sum != x.SHA256 {
		return fmt.Errorf("%w: %s read back from the stick hashes to %s, not %s", ErrDigest, x.Name, sum, x.SHA256)
	}
	if _, err := os.Lstat(final); err == nil {
		if err := removeSynced(final); err != nil {
			return s.ioErr("cannot remove the previous "+x.Name, err)
		}
	}
	if err := os.Rename(tpath, final); err != nil {
		return s.ioErr("cannot rename "+tmp+" to "+x.Name, err)
	}
	return atomicfile.SyncDir(dir)
}

// U-Boot's legacy image header (include/image.h), as `mkimage -T script`
// writes it.
const (
	ubootMagic      = 0x27051956
	ubootOSLinux    = 5
	ubootArchARM    = 2
	ubootTypeScript = 6
	ubootCompNone   = 0
	ubootHeaderSize = 64
)

// UBootScript wraps a U-Boot script as `mkimage -A arm -O linux -T script
// -C none -n NAME` does (with SOURCE_DATE_EPOCH=0: the time field is 0, so
// the bytes depend on the script only): the 64-byte legacy header, then
// the image list (the script's length, a 0) and the script. U-Boot's
// autoscr/source check both CRC-32s and the type, not the architecture.
func UBootScript(name, script string) []byte {
	data := make([]byte, 8, 8+len(script))
	binary.BigEndian.PutUint32(data, uint32(len(script)))
	data = append(data, script...)
	h := make([]byte, ubootHeaderSize)
	binary.BigEndian.PutUint32(h[0:], ubootMagic)
	binary.BigEndian.PutUint32(h[12:], uint32(len(data)))
	binary.BigEndian.PutUint32(h[24:], crc32.ChecksumIEEE(data))
	h[28], h[29], h[30], h[31] = ubootOSLinux, ubootArchARM, ubootTypeScript, ubootCompNone
	copy(h[32:63], name) // 32 bytes, NUL-terminated
	binary.BigEndian.PutUint32(h[4:], crc32.ChecksumIEEE(h))
	return append(h, data...)
}
