package firmware

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// fsSpace is what statfs(2) says of a mounted filesystem: never the FAT
// FSInfo sector's free count, which a stick pulled early leaves wrong;
// vfat computes f_bavail from the FAT itself at mount time.
type fsSpace struct {
	Free     int64 // bytes available
	Cluster  int64 // allocation unit (vfat: the cluster size)
	ReadOnly bool
}

func statSpace(dir string) (fsSpace, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fsSpace{}, fmt.Errorf("cannot read the free space of %s: %w", dir, err)
	}
	return fsSpace{Free: int64(st.Bavail) * int64(st.Bsize), Cluster: int64(st.Bsize), ReadOnly: st.Flags&unix.ST_RDONLY != 0}, nil
}

// dropCache drops the file's pages from the page cache so that reading it
// again reads the stick. The file must be synced: dirty pages stay.
func dropCache(f *os.File) error {
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("cannot drop the cached pages of %s: %w", f.Name(), err)
	}
	return nil
}

// syncFS writes every dirty buffer of the filesystem holding dir.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// goneErr says whether an I/O error means the stick went away.
func goneErr(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ESHUTDOWN)
}

func noSpaceErr(err error) bool { return errors.Is(err, unix.ENOSPC) }

// adviseSequential tells the kernel that the file behind r is read once,
// in order, so that it reads further ahead of the hashing pass. Advice
// only: a reader that is not a file, or a refusal, changes nothing.
func adviseSequential(r io.ReaderAt) {
	if f, ok := r.(*os.File); ok {
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	}
}

// settleRange writes [off, off+n) of f to the stick, waits for it, and
// drops those pages from the page cache, so that reading them again reads
// the stick. Unlike fsync it neither writes the FAT nor flushes the
// stick's cache: the fsync after the whole write does that once.
func settleRange(f *os.File, off, n int64) error {
	const flags = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, flags); err != nil {
		return fmt.Errorf("cannot write %s to the stick: %w", f.Name(), err)
	}
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("cannot drop the cached pages of %s: %w", f.Name(), err)
	}
	return nil
}

// dropRange drops [off, off+n) of f from the page cache (advice).
func dropRange(f *os.File, off, n int64) {
	unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
