package provision

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// entry is one thing provisioning wants in the image.
type entry struct {
	path   string // relative to the root, slash-separated: "etc/hostname"
	kind   byte   // 'f' file, 'd' directory, 'l' symlink
	mode   fs.FileMode
	keep   bool // file: keep the mode and owner of an existing file
	uid    int
	gid    int
	data   []byte
	link   string
	secret bool   // the diff fingerprints secret values
	binary bool   // the diff shows a size and digest
	note   string // the diff shows this instead of the contents
}

// Change is an entry that differs from what the image holds.
type Change struct {
	Path    string `json:"path"`   // "/etc/hostname"
	Action  string `json:"action"` // "create", "update", "mkdir", "symlink", "chmod", "chown" (comma-joined)
	e       entry
	existed bool
	old     []byte
	oldLink string
}

// owner returns the uid and gid of a file, or -1, -1.
func owner(fi fs.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// compare says what must change for e to hold in r; nil when nothing.
// Ownership is compared only when it can be set (euid 0).
func compare(r *os.Root, e entry, chown bool) (*Change, error) {
	c := &Change{Path: "/" + e.path, e: e}
	fi, err := r.Lstat(e.path)
	if errors.Is(err, fs.ErrNotExist) {
		c.Action = map[byte]string{'f': "create", 'd': "mkdir", 'l': "symlink"}[e.kind]
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot inspect /%s: %w", e.path, err)
	}
	c.existed = true
	var acts []string
	switch e.kind {
	case 'd':
		if !fi.IsDir() {
			return nil, fmt.Errorf("/%s is not a directory: move it away first", e.path)
		}
	case 'l':
		if fi.Mode()&fs.ModeSymlink != 0 {
			c.oldLink, _ = r.Readlink(e.path)
		} else if fi.Mode().IsRegular() {
			c.old, _ = r.ReadFile(e.path)
		}
		if c.oldLink != e.link {
			acts = append(acts, "symlink")
		}
		return finish(c, acts), nil
	case 'f':
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			c.oldLink, _ = r.Readlink(e.path)
			acts = append(acts, "update")
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("/%s is not a regular file: move it away first", e.path)
		default:
			if c.old, err = r.ReadFile(e.path); err != nil {
				return nil, fmt.Errorf("cannot read /%s: %w", e.path, err)
			}
			if !bytes.Equal(c.old, e.data) {
				acts = append(acts, "update")
			}
		}
		if e.keep && fi.Mode().IsRegular() {
			c.e.mode = fi.Mode().Perm()
			c.e.uid, c.e.gid = owner(fi)
			return finish(c, acts), nil
		}
	}
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm() != e.mode {
		acts = append(acts, fmt.Sprintf("chmod %04o->%04o", fi.Mode().Perm(), e.mode))
	}
	if uid, gid := owner(fi); chown && fi.Mode()&fs.ModeSymlink == 0 && (uid != e.uid || gid != e.gid) {
		acts = append(acts, fmt.Sprintf("chown %d:%d->%d:%d", uid, gid, e.uid, e.gid))
	}
	return finish(c, acts), nil
}

func finish(c *Change, acts []string) *Change {
	if len(acts) == 0 {
		return nil
	}
	for i, a := range acts {
		if i > 0 {
			c.Action += ","
		}
		c.Action += a
	}
	return c
}

// write makes one change, crash-safe: a file or symlink is made under a
// temporary name, synced, renamed over the old one and its directory
// synced, so a power cut leaves the old or the new, never half of one.
func write(r *os.Root, c *Change, chown bool) error {
	e := c.e
	dir := path.Dir(e.path)
	switch e.kind {
	case 'd':
		if !c.existed {
			if err := r.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("cannot create /%s: %w", dir, err)
			}
			if err := r.Mkdir(e.path, e.mode); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cannot create /%s: %w", e.path, err)
			}
		}
		if err := r.Chmod(e.path, e.mode); err != nil {
			return fmt.Errorf("cannot set the mode of /%s: %w", e.path, err)
		}
		if chown {
			if err := r.Chown(e.path, e.uid, e.gid); err != nil {
				return fmt.Errorf("cannot set the owner of /%s: %w", e.path, err)
			}
		}
		return syncDir(r, dir)
	}
	if err := r.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create /%s: %w", dir, err)
	}
	if e.kind == 'l' {
		tmp := path.Join(dir, ".#"+path.Base(e.path)+".provision")
		r.Remove(tmp)
		if err := r.Symlink(e.link, tmp); err != nil {
			return fmt.Errorf("cannot link /%s: %w", e.path, err)
		}
		if err := r.Rename(tmp, e.path); err != nil {
			r.Remove(tmp)
			return fmt.Errorf("cannot link /%s: %w", e.path, err)
		}
		return syncDir(r, dir)
	}
	tmp := path.Join(dir, ".#"+path.Base(e.path)+".provision")
	r.Remove(tmp)
	f, err := r.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write /%s: %w", e.path, err)
	}
	_, err = f.Write(e.data)
	if err == nil && chown && e.uid >= 0 {
		err = f.Chown(e.uid, e.gid)
	}
	if err == nil {
		err = f.Chmod(e.mode) // after chown, which may clear set-id bits
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, e.path)
	}
	if err != nil {
		r.Remove(tmp)
		return fmt.Errorf("cannot write /%s: %w", e.path, err)
	}
	return syncDir(r, dir)
}

func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot sync /%s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync /%s: %w", dir, err)
	}
	return nil
}
