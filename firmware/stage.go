package firmware

import (
	"context"
	"crypto"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/boxagent/boxagent/internal/atomicfile"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// TempName is the 8.3 name a package is written under before it is
// verified and renamed: a plain upper-case short name needs one FAT
// directory entry and no long-name slots, and recovery never picks it up.
const TempName = "UPDATE.PRT"

// Target is what a board's recovery expects of a staged package: the
// firmware-relevant part of a board profile, with the verification policy
// built from its keys.
type Target struct {
	Board       string   `json:"board"`
	Package     string   `json:"package"`     // "update.zip"
	Filesystems []string `json:"filesystems"` // mount types recovery reads: "vfat"
	Policy      Policy   `json:"-"`
	// Instructions are the board's recovery steps, returned with the result.
	Instructions string `json:"-"`
	// Extra are the files recovery needs beside the package (see
	// ExtraSpec); they are staged with it.
	Extra []ExtraSpec `json:"-"`
}

// StageProgress reports how far staging is: Phase "write" then "verify",
// each over the package's bytes.
type StageProgress struct {
	Phase string        `json:"phase"`
	Done  int64         `json:"done"`
	Total int64         `json:"total"`
	Rate  float64       `json:"rate"` // bytes per second in this phase
	ETA   time.Duration `json:"eta"`  // of this phase
	// Written and Verified are the stick's progress in one figure, for
	// one bar: the bytes written so far, and those read back from the
	// stick and hashed (the read-back runs behind the write, not after
	// it). The copy is done when both are Total.
	Written  int64 `json:"written"`
	Verified int64 `json:"verified"`
}

// StageProgressFunc receives staging progress.
type StageProgressFunc func(StageProgress)

// StickInfo is what a staging records of the stick.
type StickInfo struct {
	Name       string `json:"name"` // sda
	Device     string `json:"device"`
	Serial     string `json:"serial,omitempty"`
	Vendor     string `json:"vendor,omitempty"`
	Model      string `json:"model,omitempty"`
	Size       int64  `json:"size"`
	Filesystem string `json:"filesystem"`
	Label      string `json:"label,omitempty"`
}

// StageResult is what Stage did.
type StageResult struct {
	Artifact   string    `json:"artifact"`
	Size       int64     `json:"size"`
	Signer     *Signer   `json:"signer,omitempty"`
	Stick      StickInfo `json:"stick"`
	Board      string    `json:"board"`
	Path       string    `json:"path"` // on the stick: "/update.zip"
	Mountpoint string    `json:"mountpoint"`
	// Replaced is true when a file of the package's name was there before.
	Replaced bool `json:"replaced,omitempty"`
	// Extra are the files staged beside the package (Target.Extra).
	Extra []ExtraFile `json:"extra,omitempty"`
	// Cleaned lists leftovers of an interrupted staging that were removed.
	Cleaned       []string `json:"cleaned,omitempty"`
	WriteSeconds  float64  `json:"write_seconds"`
	VerifySeconds float64  `json:"verify_seconds"`
	Instructions  string   `json:"instructions"`
	Notes         []string `json:"notes,omitempty"`
}

// Stager writes artifacts of a Store onto sticks.
type Stager struct {
	Store   *Store
	Mounter Mounter
	Paths   HostPaths
	Logger  *slog.Logger
	// now and space replace the clock and statfs in tests.
	now   func() time.Time
	space func(dir string) (fsSpace, error)
	// written is called with each region [off, end) of the temporary
	// copy once it is written, synced and dropped from the cache, before
	// it is read back (tests).
	written func(path string, off, end int64)
	// region replaces readBackRegion (tests).
	region int64
}

func (s *Stager) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Stager) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// Stage writes the artifact sha onto the stick so that the board's
// recovery finds it under t.Package at the root, and verifies it from the
// stick. The order of the steps is what makes a pull or a crash at any
// moment safe (the final name never names bytes that were not verified):
//
//  1. refuse, before anything is written: a read-only stick, a filesystem
//     recovery cannot read, a package over 4 GiB on FAT, an extra file
//     (Target.Extra) that neither the package nor the profile provides,
//     too little space (statfs after the mount, counting the temporary
//     copy and the extra files);
//  2. remove the temporary copies an interrupted staging left;
//  3. write TempName from the store, fsync; meanwhile each region of it
//     that is written is synced, dropped from the page cache, read back
//     from the stick and hashed (readback.go);
//  4. verify it from the stick with the board's policy and the
//     artifact's SHA-256, on that read-back (this alone pins the bytes: a
//     store copy that rotted since its import fails here too, and is then
//     told apart by hashing the store's copy);
//  5. write each extra file the same way (temporary name, fsync, cache
//     dropped, read back and compared with its SHA-256, then renamed);
//  6. only then remove a previous package of the final name, fsync the
//     directory, rename TempName to the final name, fsync the directory.
//
// FAT has no atomic rename-over: Linux's vfat replaces an existing name in
// two directory writes. Removing the old name first, as its own synced
// step, means a pull between steps leaves either the old package, or no
// package ("no package found" at recovery, and the next staging cleans
// TempName up), never a package name over partial bytes. When the stick
// holds too little space for both the old package and the new one, the
// old one is removed before step 3 and the result says so.
//
// The stick is left mounted read-only (clean on the stick: a pull is
// harmless); Eject unmounts it.
//
// Stage runs these as the named steps of stageSteps (stage_steps.go):
// choose, open, mount, clean and check space (1 and 2), copy (3), read
// back (4), extras (5), rename and sync (6), then record. An error is a
// *StageError naming its step.
func (s *Stager) Stage(ctx context.Context, sha string, st Stick, dev string, t Target, progress StageProgressFunc) (StageResult, error) {
	if progress == nil {
		progress = func(StageProgress) {}
	}
	r := &stageRun{s: s, ctx: ctx, sha: sha, st: st, dev: dev, t: t, progress: progress, oldSize: -1}
	var err error
	for _, step := range stageSteps {
		if err = step.run(r); err != nil {
			err = &StageError{Step: step.name, Err: err}
			break
		}
	}
	r.end(err)
	return r.res, err
}

// Rollback stages again the artifact staged before the current one, by
// its SHA-256: the exact bytes, never a rebuild.
func (s *Stager) Rollback(ctx context.Context, st Stick, dev string, t Target, progress StageProgressFunc) (StageResult, error) {
	prev, err := s.Store.Previous()
	if err != nil {
		return StageResult{}, err
	}
	return s.Stage(ctx, prev.SHA256, st, dev, t, progress)
}

// volumeDirty reads the "not cleanly unmounted" flag Linux keeps in a FAT
// boot sector (FAT32 offset 65, FAT12/16 offset 37). A mounted volume
// reads dirty: ask before mounting.
func volumeDirty(disk string, p Partition) bool {
	f, err := os.Open(disk)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, sector)
	if readFull(f, b, p.Start) != nil {
		return false
	}
	switch p.FS {
	case "fat32":
		return b[65]&1 != 0
	case "fat12", "fat16":
		return b[37]&1 != 0
	}
	return false
}

// mount returns where the partition is mounted read-write: an existing
// mount if there is one, else a new one under MountBase (ours).
func (s *Stager) mount(ctx context.Context, st Stick, dev string, p Partition) (dir string, ours bool, err error) {
	mm := partitionMajMin(s.Paths, st, dev)
	if mm == "" {
		return "", false, fmt.Errorf("%w: /sys has no %s", ErrGone, dev)
	}
	mounts, err := MountsOf(s.Paths, mm)
	if err != nil {
		return "", false, err
	}
	for _, m := range mounts {
		under := strings.HasPrefix(m.Dir, s.Paths.MountBase+"/")
		switch {
		case !m.ReadOnly():
			return m.Dir, under, nil
		case under:
			// Ours, left read-only by a former staging.
			if err := s.Mounter.Mount(ctx, MountRequest{Target: m.Dir, FSType: p.MountType(), Remount: true}); err != nil {
				return "", false, err
			}
			return m.Dir, true, nil
		}
	}
	if len(mounts) > 0 {
		return "", false, &StickError{ErrReadOnly, fmt.Sprintf("%s is mounted read-only at %s; unmount it (boxagent fw eject) and try again", dev, mounts[0].Dir)}
	}
	dir = filepath.Join(s.Paths.MountBase, st.ID())
	if err := s.Mounter.Mount(ctx, MountRequest{Source: filepath.Join(s.Paths.Dev, dev), Target: dir, FSType: p.MountType()}); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

// write copies the artifact to path, then fsyncs it and drops its pages
// from the cache. It hashes nothing: the verification from the stick
// compares the bytes with the artifact's SHA-256 (and the store's copy is
// hashed only when that fails, to say which side is wrong), so a second
// SHA-256 on the way would cost a small box its CPU for no guarantee.
func (s *Stager) write(ctx context.Context, src io.ReaderAt, art Artifact, path string, progress StageProgressFunc) error {
	return s.writeCopy(ctx, src, art, path, progress, func(int64) {})
}

// writeCopy is write, telling wrote how much is written after each block
// (the read-back, readback.go).
func (s *Stager) writeCopy(ctx context.Context, src io.ReaderAt, art Artifact, path string, progress StageProgressFunc, wrote func(int64)) error {
	name := filepath.Base(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return s.ioErr("cannot create "+name, err)
	}
	defer f.Close()
	b := make([]byte, 1<<20)
	start := s.clock()
	var off int64
	var last time.Time
	for off < art.Size {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(b)), art.Size-off))
		if err := readFull(src, b[:n], off); err != nil {
			return fmt.Errorf("cannot read the artifact at %d: %w", off, err)
		}
		if _, err := f.Write(b[:n]); err != nil {
			return s.ioErr("cannot write "+name, err)
		}
		off += int64(n)
		wrote(off)
		if now := s.clock(); now.Sub(last) >= 200*time.Millisecond || off == art.Size {
			last = now
			progress(phaseProgress("write", off, art.Size, now.Sub(start)))
		}
	}
	if err := f.Sync(); err != nil {
		return s.ioErr("cannot sync "+name, err)
	}
	if err := dropCache(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return s.ioErr("cannot close "+name, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// hashReaderAt is the SHA-256 of the first size bytes of r.
func hashReaderAt(r io.ReaderAt, size int64) (string, error) {
	h := kernelhash.New(crypto.SHA256)
	defer h.Close()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return "", err
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum), h.Err()
}

// ioErr wraps an I/O error on the stick, naming ErrGone or ErrNoSpace
// when that is what it means.
func (s *Stager) ioErr(what string, err error) error {
	switch {
	case goneErr(err):
		return fmt.Errorf("%s: %w (%v): plug it back and stage again", what, ErrGone, err)
	case noSpaceErr(err):
		return fmt.Errorf("%s: %w", what, ErrNoSpace)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func phaseProgress(phase string, done, total int64, took time.Duration) StageProgress {
	p := StageProgress{Phase: phase, Done: done, Total: total}
	if sec := took.Seconds(); sec > 0 && done > 0 {
		p.Rate = float64(done) / sec
		p.ETA = time.Duration(float64(total-done) / p.Rate * float64(time.Second)).Round(time.Second)
	}
	return p
}

// removeSynced removes a file and syncs its directory.
func removeSynced(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

func roundUp(n, unit int64) int64 {
	if unit <= 0 {
		return n
	}
	return (n + unit - 1) / unit * unit
}

// human renders a byte count: 12.3 MiB.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
