package firmware

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
func (s *Stager) Stage(ctx context.Context, sha string, st Stick, dev string, t Target, progress StageProgressFunc) (res StageResult, err error) {
	if progress == nil {
		progress = func(StageProgress) {}
	}
	if t.Package == "" || strings.ContainsAny(t.Package, `/\`) {
		return res, fmt.Errorf("%w: the board names no package file for the stick", ErrPolicy)
	}
	part, dev, err := choose(st, dev, t)
	if err != nil {
		return res, err
	}
	// Read again: a write-protect switch or BLKROSET sends no uevent.
	if st.ReadOnly || readSysString(filepath.Join(s.Paths.Sys, "block", st.Name, "ro")) == "1" {
		return res, &StickError{ErrReadOnly, fmt.Sprintf("the stick %s is write-protected: slide its lock switch, or use another stick", st.Name)}
	}
	src, art, err := s.Store.Open(sha)
	if err != nil {
		return res, err
	}
	defer src.Close()
	res = StageResult{Artifact: art.SHA256, Size: art.Size, Signer: art.Signer, Board: t.Board, Path: "/" + t.Package,
		Instructions: t.Instructions, Stick: StickInfo{Name: st.Name, Device: dev, Serial: st.Serial, Vendor: st.Vendor,
			Model: st.Model, Size: st.Size, Filesystem: part.FS, Label: part.Label}}
	if strings.HasPrefix(part.FS, "fat") && art.Size > MaxFAT32File {
		return res, fmt.Errorf("%w: %d bytes, FAT holds files up to 4 GiB - 1", ErrTooLarge, art.Size)
	}
	extras, err := resolveExtras(src, art.Size, t.Extra)
	if err != nil {
		return res, err
	}
	res.Extra = extras

	dirty := volumeDirty(filepath.Join(s.Paths.Dev, st.Name), part)
	dir, ours, err := s.mount(ctx, st, dev, part)
	if err != nil {
		return res, err
	}
	if dirty && ours {
		res.Notes = append(res.Notes, "the stick was not cleanly removed before (its FAT dirty flag is set, and the kernel keeps it): "+
			"recovery reads it anyway; fsck.fat -a on a PC clears it")
	}
	res.Mountpoint = dir
	defer func() {
		if err != nil && errors.Is(err, ErrGone) && ours {
			// A stale mount of a device that is gone: drop it, so the
			// stick plugged back gets a fresh one.
			s.Mounter.Unmount(context.WithoutCancel(ctx), dir)
		}
	}()
	space := statSpace
	if s.space != nil {
		space = s.space
	}
	sp, err := space(dir)
	if err != nil {
		return res, err
	}
	if sp.ReadOnly {
		return res, &StickError{ErrReadOnly, fmt.Sprintf("the stick %s is mounted read-only (write-protected, or the kernel found an error on it: check it with fsck.fat)", st.Name)}
	}

	tmp := filepath.Join(dir, TempName)
	final := filepath.Join(dir, t.Package)
	if res.Cleaned, err = s.CleanLeftovers(dir); err != nil {
		return res, err
	}

	// Space: the new copy whole, rounded up to clusters, plus a cluster
	// for the directory to grow; the old package still counts until it
	// is removed.
	need := roundUp(art.Size, sp.Cluster) + sp.Cluster
	for _, x := range extras {
		need += roundUp(x.Size, sp.Cluster)
	}
	var oldSize int64 = -1
	if fi, err := os.Stat(final); err == nil {
		oldSize = fi.Size()
		res.Replaced = true
	}
	removeOldFirst := false
	switch {
	case sp.Free >= need:
	case oldSize >= 0 && sp.Free+roundUp(oldSize, sp.Cluster) >= need:
		removeOldFirst = true
	default:
		return res, fmt.Errorf("%w: %s needs %s, the stick has %s free", ErrNoSpace, t.Package, human(need), human(sp.Free))
	}
	if removeOldFirst {
		if err := removeSynced(final); err != nil {
			return res, s.ioErr("cannot remove the previous "+t.Package, err)
		}
		res.Notes = append(res.Notes, "the previous "+t.Package+" was removed first to make room")
	}

	cleanTmp := true
	defer func() {
		if err != nil && cleanTmp {
			if rerr := removeSynced(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				s.log().Warn("cannot remove the temporary copy", "path", tmp, "err", rerr)
			}
		}
		if err != nil {
			for i := range extras {
				if rerr := removeSynced(filepath.Join(dir, extraTemp(i))); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
					s.log().Warn("cannot remove the temporary copy", "path", extraTemp(i), "err", rerr)
				}
			}
		}
	}()
	pol := t.Policy
	if pol.Method == MethodMinisign || pol.Method == MethodEd25519 {
		// The store keeps no detached signature: it checked it at import,
		// and the SHA-256 below pins these bytes to the ones it checked.
		pol = Policy{Method: MethodSHA256, RequiredEntries: pol.RequiredEntries}
	}
	start := s.clock()
	// The copy is read back from the stick and hashed while it is
	// written (readback.go); the verification below then checks the
	// structure from the stick and gives the verdict on that pass.
	var rb *readBack
	stickProgress := progress
	progress = func(p StageProgress) {
		p.Written, p.Verified = p.Done, 0
		if p.Phase == "verify" {
			p.Written, p.Verified = art.Size, p.Done
		} else if rb != nil {
			p.Verified = rb.read.Load()
		}
		stickProgress(p)
	}
	rb = s.startReadBack(ctx, src, art.Size, tmp, pol, progress)
	wrote := func(int64) {}
	if rb != nil {
		wrote = rb.wrote
		defer rb.close()
	}
	if err := s.writeCopy(ctx, src, art, tmp, progress, wrote); err != nil {
		if rb != nil {
			rb.stop()
		}
		if _, serr := os.Stat(filepath.Join(s.Paths.Sys, "block", st.Name)); serr != nil && !errors.Is(err, ErrGone) {
			err = fmt.Errorf("%w while writing: %v: plug it back and stage again", ErrGone, err)
		}
		return res, err
	}
	res.WriteSeconds = s.clock().Sub(start).Seconds()
	// VerifySeconds is what the verification adds after the write: the
	// rest of the read-back, the structure checks and the verdict.
	wstart, start := start, s.clock()
	opts := []Option{WithSHA256(art.SHA256)}
	if rb == nil && s.written != nil {
		s.written(tmp, 0, art.Size)
	}
	if rb != nil {
		pass, perr := rb.finish(ctx, progress, func() StageProgress {
			return phaseProgress("verify", art.Size, art.Size, s.clock().Sub(wstart))
		})
		switch {
		case perr == nil:
			opts = append(opts, withHashed(pass))
		case ctx.Err() != nil:
			return res, ctx.Err()
		default:
			// Read again below: Verify names what is wrong, in
			// recovery's words where it has them.
			s.log().Warn("reading the copy back while writing failed; reading it again", "path", tmp, "err", perr)
		}
	}

	rep, err := VerifyFile(ctx, tmp, pol, append(opts, WithProgress(func(_ string, done, total int64) {
		progress(phaseProgress("verify", done, total, s.clock().Sub(start)))
	}))...)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(s.Paths.Sys, "block", res.Stick.Name)); serr != nil {
			return res, fmt.Errorf("%w during the verification: %v", ErrGone, err)
		}
		if errors.Is(err, ErrDigest) {
			if sum, herr := hashReaderAt(src, art.Size); herr == nil && sum != art.SHA256 {
				return res, fmt.Errorf("%w: the store's copy of %s hashes to %s", ErrReadBack, art.SHA256, sum)
			}
		}
		return res, fmt.Errorf("cannot verify the copy on the stick: %w", err)
	}
	if rep.Signer != nil {
		res.Signer = rep.Signer
	}
	// The extra files go in place before the package: until the
	// package's name appears, recovery finds no package, and the next
	// staging writes them again.
	for i, x := range extras {
		if err := s.stageExtra(ctx, dir, extraTemp(i), x); err != nil {
			return res, fmt.Errorf("cannot stage %s: %w", x.Name, err)
		}
	}
	res.VerifySeconds = s.clock().Sub(start).Seconds()

	if oldSize >= 0 && !removeOldFirst {
		if err := removeSynced(final); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, s.ioErr("cannot remove the previous "+t.Package, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return res, s.ioErr("cannot rename "+TempName+" to "+t.Package, err)
	}
	cleanTmp = false
	if err := atomicfile.SyncDir(dir); err != nil {
		return res, s.ioErr("cannot sync the stick", err)
	}
	if fi, err := os.Stat(final); err != nil || fi.Size() != art.Size {
		return res, fmt.Errorf("cannot find %s with %d bytes on the stick after the rename: %v", t.Package, art.Size, err)
	}
	if err := s.Store.RecordStaged(art.SHA256, StagedRecord{Time: s.clock(), Serial: st.Serial, Label: part.Label}); err != nil {
		res.Notes = append(res.Notes, "cannot record the staging in the store: "+err.Error())
	}
	if ours {
		if err := s.Mounter.Mount(ctx, MountRequest{Target: dir, FSType: part.MountType(), ReadOnly: true, Remount: true}); err != nil {
			res.Notes = append(res.Notes, err.Error())
		}
	}
	return res, nil
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
