// Package atomicfile replaces a file so that a reader sees the old content
// or the new, never part of either, and a crash or power cut leaves one of
// the two whole under the final name.
//
// The steps are the usual ones: a temporary file in the same folder (a
// rename only is atomic within one filesystem), write, chmod, fsync,
// rename over the final name, fsync of the folder (without it the rename
// itself may be lost on power cut, leaving the old file after the caller
// was told the new one is written). Any failure before the rename removes
// the temporary file and leaves the final name untouched.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Options are what the callers differ in.
type Options struct {
	// TempPrefix starts the temporary file's name, which is TempPrefix,
	// the final name, a dot and a random suffix. The default "." keeps
	// it hidden; a caller that removes crash leftovers by prefix at
	// start-up (the firmware store) sets its own.
	TempPrefix string
	// KeepOwner gives the new file the owner and group of the file it
	// replaces, so a root daemon rewriting a file an administrator owns
	// does not take it over. A missing old file keeps the process's.
	KeepOwner bool
	// CreateDir creates a missing folder (and its parents, mode 0755)
	// instead of failing. Callers whose folder missing means something
	// is wrong (a store that should have been opened) leave it false.
	CreateDir bool
}

// Write replaces the file at path with data, mode perm (umask does not
// apply), as described in the package comment.
func Write(path string, data []byte, perm os.FileMode, opt Options) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("cannot write %q: no file name", path)
	}
	if opt.CreateDir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", dir, err)
		}
	}
	prefix := opt.TempPrefix
	if prefix == "" {
		prefix = "."
	}
	f, err := os.CreateTemp(dir, prefix+base+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && opt.KeepOwner {
		err = chownLike(f, path)
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		// The new content is in place, but a power cut may still undo the
		// rename: the caller is told so it does not report it as saved.
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// chownLike gives f the owner and group of the file at path, if it can be
// read: a file that is not there (the first write) has no owner to keep.
// When f already has them (the usual case: a service rewriting its own
// file) no chown is made at all: a hardened unit's seccomp filter
// (SystemCallFilter=~@privileged) refuses even a chown to the same owner.
func chownLike(f *os.File, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	old, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	tfi, err := f.Stat()
	if err != nil {
		return err
	}
	if cur, ok := tfi.Sys().(*syscall.Stat_t); ok && cur.Uid == old.Uid && cur.Gid == old.Gid {
		return nil
	}
	if err := f.Chown(int(old.Uid), int(old.Gid)); err != nil {
		return fmt.Errorf("cannot keep the owner %d:%d: %w", old.Uid, old.Gid, err)
	}
	return nil
}

// SyncDir fsyncs the folder dir, so that a rename or removal in it
// survives a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot sync folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync folder %s: %w", dir, err)
	}
	return nil
}
