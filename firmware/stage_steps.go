package firmware

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// Stage's steps, in order (Stage's comment says why this order). Each
// reads and fills the stageRun; the first error ends the staging, and
// stageRun.end then undoes what the steps before left behind.
var stageSteps = []struct {
	name string
	run  func(*stageRun) error
}{
	{"choose", (*stageRun).choose},
	{"open", (*stageRun).open},
	{"mount", (*stageRun).mount},
	{"clean", (*stageRun).clean},
	{"check space", (*stageRun).checkSpace},
	{"copy", (*stageRun).copy},
	{"read back", (*stageRun).readBack},
	{"extras", (*stageRun).extras},
	{"rename", (*stageRun).rename},
	{"sync", (*stageRun).sync},
	{"record", (*stageRun).record},
}

// StageError is a staging that failed at one of its steps ("check
// space", "copy", "read back" …); errors.Is and errors.As see the step's
// own error.
type StageError struct {
	Step string
	Err  error
}

func (e *StageError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// stageRun is one staging, handed from step to step.
type stageRun struct {
	s        *Stager
	ctx      context.Context
	sha      string
	st       Stick
	dev      string
	t        Target
	progress StageProgressFunc
	res      StageResult

	part   Partition   // choose
	src    *os.File    // open: the store's copy
	art    Artifact    // open
	extraF []ExtraFile // open: the extra files
	dir    string      // mount: where the partition is mounted
	ours   bool        // mount: the mount is the agent's
	space  fsSpace     // mount
	tmp    string      // clean: TempName on the stick
	final  string      // clean: t.Package on the stick
	pol    Policy      // copy: the verification on the stick
	rb     *readBack   // copy: nil when the pass cannot be planned
	wstart time.Time   // copy: when the write started
	vstart time.Time   // read back: when the write ended
	undo   bool        // from copy on: an error removes the temporary copies
	tmpUp  bool        // from copy to rename: TempName is ours to remove
	// oldSize is the size of a previous package of the final name, -1
	// when there is none; removedOld says it was removed before the
	// copy to make room.
	oldSize    int64
	removedOld bool
}

// choose refuses a target without a package name, picks the stick's
// partition and refuses a write-protected stick.
func (r *stageRun) choose() error {
	if r.t.Package == "" || strings.ContainsAny(r.t.Package, `/\`) {
		return fmt.Errorf("%w: the board names no package file for the stick", ErrPolicy)
	}
	part, dev, err := choose(r.st, r.dev, r.t)
	if err != nil {
		return err
	}
	r.part, r.dev = part, dev
	// Read again: a write-protect switch or BLKROSET sends no uevent.
	if r.st.ReadOnly || readSysString(filepath.Join(r.s.Paths.Sys, "block", r.st.Name, "ro")) == "1" {
		return &StickError{ErrReadOnly, fmt.Sprintf("the stick %s is write-protected: slide its lock switch, or use another stick", r.st.Name)}
	}
	return nil
}

// open opens the artifact in the store, starts the result, and refuses
// a package FAT cannot hold or extra files nobody provides.
func (r *stageRun) open() error {
	src, art, err := r.s.Store.Open(r.sha)
	if err != nil {
		return err
	}
	r.src, r.art = src, art
	st, part := r.st, r.part
	r.res = StageResult{Artifact: art.SHA256, Size: art.Size, Signer: art.Signer, Board: r.t.Board, Path: "/" + r.t.Package,
		Instructions: r.t.Instructions, Stick: StickInfo{Name: st.Name, Device: r.dev, Serial: st.Serial, Vendor: st.Vendor,
			Model: st.Model, Size: st.Size, Filesystem: part.FS, Label: part.Label}}
	if strings.HasPrefix(part.FS, "fat") && art.Size > MaxFAT32File {
		return fmt.Errorf("%w: %d bytes, FAT holds files up to 4 GiB - 1", ErrTooLarge, art.Size)
	}
	extras, err := resolveExtras(src, art.Size, r.t.Extra)
	if err != nil {
		return err
	}
	r.res.Extra, r.extraF = extras, extras
	return nil
}

// mount mounts the partition read-write (or finds it mounted), and
// reads its free space; a filesystem the kernel keeps read-only is
// refused.
func (r *stageRun) mount() error {
	dirty := volumeDirty(filepath.Join(r.s.Paths.Dev, r.st.Name), r.part)
	dir, ours, err := r.s.mount(r.ctx, r.st, r.dev, r.part)
	if err != nil {
		return err
	}
	r.dir, r.ours = dir, ours
	if dirty && ours {
		r.res.Notes = append(r.res.Notes, "the stick was not cleanly removed before (its FAT dirty flag is set, and the kernel keeps it): "+
			"recovery reads it anyway; fsck.fat -a on a PC clears it")
	}
	r.res.Mountpoint = dir
	space := statSpace
	if r.s.space != nil {
		space = r.s.space
	}
	if r.space, err = space(dir); err != nil {
		return err
	}
	if r.space.ReadOnly {
		return &StickError{ErrReadOnly, fmt.Sprintf("the stick %s is mounted read-only (write-protected, or the kernel found an error on it: check it with fsck.fat)", r.st.Name)}
	}
	return nil
}

// clean removes the temporary copies an interrupted staging left.
func (r *stageRun) clean() error {
	r.tmp = filepath.Join(r.dir, TempName)
	r.final = filepath.Join(r.dir, r.t.Package)
	var err error
	r.res.Cleaned, err = r.s.CleanLeftovers(r.dir)
	return err
}

// checkSpace makes sure the copy fits: the new copy whole, rounded up to
// clusters, plus a cluster for the directory to grow; the old package
// still counts until it is removed. When the copy fits only without the
// old package, the old package is removed first, and the result says so.
func (r *stageRun) checkSpace() error {
	sp := r.space
	need := roundUp(r.art.Size, sp.Cluster) + sp.Cluster
	for _, x := range r.extraF {
		need += roundUp(x.Size, sp.Cluster)
	}
	if fi, err := os.Stat(r.final); err == nil {
		r.oldSize = fi.Size()
		r.res.Replaced = true
	}
	switch {
	case sp.Free >= need:
		return nil
	case r.oldSize >= 0 && sp.Free+roundUp(r.oldSize, sp.Cluster) >= need:
	default:
		return fmt.Errorf("%w: %s needs %s, the stick has %s free", ErrNoSpace, r.t.Package, human(need), human(sp.Free))
	}
	if err := removeSynced(r.final); err != nil {
		return r.s.ioErr("cannot remove the previous "+r.t.Package, err)
	}
	r.removedOld = true
	r.res.Notes = append(r.res.Notes, "the previous "+r.t.Package+" was removed first to make room")
	return nil
}

// copy writes TempName from the store and syncs it; meanwhile each
// region written is synced, dropped from the page cache, read back from
// the stick and hashed (readback.go).
func (r *stageRun) copy() error {
	r.undo, r.tmpUp = true, true
	r.pol = r.t.Policy
	if r.pol.Method == MethodMinisign || r.pol.Method == MethodEd25519 {
		// The store keeps no detached signature: it checked it at import,
		// and the SHA-256 of the read back pins these bytes to the ones
		// it checked.
		r.pol = Policy{Method: MethodSHA256, RequiredEntries: r.pol.RequiredEntries}
	}
	r.wstart = r.s.clock()
	// The stick's progress in one figure: bytes written, and bytes read
	// back and hashed behind the write.
	stickProgress, size := r.progress, r.art.Size
	r.progress = func(p StageProgress) {
		p.Written, p.Verified = p.Done, 0
		if p.Phase == "verify" {
			p.Written, p.Verified = size, p.Done
		} else if r.rb != nil {
			p.Verified = r.rb.read.Load()
		}
		stickProgress(p)
	}
	r.rb = r.s.startReadBack(r.ctx, r.src, size, r.tmp, r.pol, r.progress)
	wrote := func(int64) {}
	if r.rb != nil {
		wrote = r.rb.wrote
	}
	if err := r.s.writeCopy(r.ctx, r.src, r.art, r.tmp, r.progress, wrote); err != nil {
		if r.rb != nil {
			r.rb.stop()
		}
		if _, serr := os.Stat(filepath.Join(r.s.Paths.Sys, "block", r.st.Name)); serr != nil && !errors.Is(err, ErrGone) {
			err = fmt.Errorf("%w while writing: %v: plug it back and stage again", ErrGone, err)
		}
		return err
	}
	r.res.WriteSeconds = r.s.clock().Sub(r.wstart).Seconds()
	return nil
}

// readBack verifies the copy from the stick with the board's policy and
// the artifact's SHA-256, on the read-back of the copy step (this alone
// pins the bytes: a store copy that rotted since its import fails here
// too, and is then told apart by hashing the store's copy).
func (r *stageRun) readBack() error {
	// VerifySeconds is what the verification adds after the write: the
	// rest of the read-back, the structure checks and the verdict (and
	// the extra files).
	r.vstart = r.s.clock()
	size := r.art.Size
	opts := []Option{WithSHA256(r.art.SHA256)}
	if r.rb == nil && r.s.written != nil {
		r.s.written(r.tmp, 0, size)
	}
	if r.rb != nil {
		pass, err := r.rb.finish(r.ctx, r.progress, func() StageProgress {
			return phaseProgress("verify", size, size, r.s.clock().Sub(r.wstart))
		})
		switch {
		case err == nil:
			opts = append(opts, withHashed(pass))
		case r.ctx.Err() != nil:
			return r.ctx.Err()
		default:
			// Read again below: Verify names what is wrong, in
			// recovery's words where it has them.
			r.s.log().Warn("reading the copy back while writing failed; reading it again", "path", r.tmp, "err", err)
		}
	}
	rep, err := VerifyFile(r.ctx, r.tmp, r.pol, append(opts, WithProgress(func(_ string, done, total int64) {
		r.progress(phaseProgress("verify", done, total, r.s.clock().Sub(r.vstart)))
	}))...)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(r.s.Paths.Sys, "block", r.st.Name)); serr != nil {
			return fmt.Errorf("%w during the verification: %v", ErrGone, err)
		}
		if errors.Is(err, ErrDigest) {
			if sum, herr := hashReaderAt(r.src, size); herr == nil && sum != r.art.SHA256 {
				return fmt.Errorf("%w: the store's copy of %s hashes to %s", ErrReadBack, r.art.SHA256, sum)
			}
		}
		return fmt.Errorf("cannot verify the copy on the stick: %w", err)
	}
	if rep.Signer != nil {
		r.res.Signer = rep.Signer
	}
	return nil
}

// extras writes each extra file the same way (temporary name, fsync,
// cache dropped, read back and compared with its SHA-256, then renamed),
// before the package: until the package's name appears, recovery finds
// no package, and the next staging writes them again.
func (r *stageRun) extras() error {
	for i, x := range r.extraF {
		if err := r.s.stageExtra(r.ctx, r.dir, extraTemp(i), x); err != nil {
			return fmt.Errorf("cannot stage %s: %w", x.Name, err)
		}
	}
	r.res.VerifySeconds = r.s.clock().Sub(r.vstart).Seconds()
	return nil
}

// rename removes a previous package of the final name (its own synced
// step: FAT has no atomic rename-over), then renames TempName to it.
func (r *stageRun) rename() error {
	if r.oldSize >= 0 && !r.removedOld {
		if err := removeSynced(r.final); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return r.s.ioErr("cannot remove the previous "+r.t.Package, err)
		}
	}
	if err := os.Rename(r.tmp, r.final); err != nil {
		return r.s.ioErr("cannot rename "+TempName+" to "+r.t.Package, err)
	}
	r.tmpUp = false
	return nil
}

// sync syncs the directory and checks the package is there whole.
func (r *stageRun) sync() error {
	if err := atomicfile.SyncDir(r.dir); err != nil {
		return r.s.ioErr("cannot sync the stick", err)
	}
	if fi, err := os.Stat(r.final); err != nil || fi.Size() != r.art.Size {
		return fmt.Errorf("cannot find %s with %d bytes on the stick after the rename: %v", r.t.Package, r.art.Size, err)
	}
	return nil
}

// record records the staging in the store and leaves the stick mounted
// read-only (clean on the stick: a pull is harmless); neither fails the
// staging, the result notes them.
func (r *stageRun) record() error {
	if err := r.s.Store.RecordStaged(r.art.SHA256, StagedRecord{Time: r.s.clock(), Serial: r.st.Serial, Label: r.part.Label}); err != nil {
		r.res.Notes = append(r.res.Notes, "cannot record the staging in the store: "+err.Error())
	}
	if r.ours {
		if err := r.s.Mounter.Mount(r.ctx, MountRequest{Target: r.dir, FSType: r.part.MountType(), ReadOnly: true, Remount: true}); err != nil {
			r.res.Notes = append(r.res.Notes, err.Error())
		}
	}
	return nil
}

// end undoes what the steps left when one failed (err): the read-back
// ends, the temporary copies go, and a stale mount of a device that is
// gone is dropped, so the stick plugged back gets a fresh one.
func (r *stageRun) end(err error) {
	if r.rb != nil {
		r.rb.close()
	}
	if err != nil && r.undo {
		if r.tmpUp {
			if rerr := removeSynced(r.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				r.s.log().Warn("cannot remove the temporary copy", "path", r.tmp, "err", rerr)
			}
		}
		for i := range r.extraF {
			if rerr := removeSynced(filepath.Join(r.dir, extraTemp(i))); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				r.s.log().Warn("cannot remove the temporary copy", "path", extraTemp(i), "err", rerr)
			}
		}
	}
	if err != nil && errors.Is(err, ErrGone) && r.ours {
		r.s.Mounter.Unmount(context.WithoutCancel(r.ctx), r.dir)
	}
	if r.src != nil {
		r.src.Close()
	}
}
