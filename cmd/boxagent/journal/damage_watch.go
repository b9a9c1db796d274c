package journal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WatchQuarantined calls changed whenever a damaged journal moved aside
// next to path (what Quarantined lists) comes or goes: inotify on the
// folder, so that what shows them (status) follows someone removing one
// without being asked again. It returns once the watch is set; the watch
// ends with ctx.
func WatchQuarantined(ctx context.Context, path string, changed func()) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cannot watch the journal's folder: %w", err)
	}
	dir, prefix := filepath.Dir(path), filepath.Base(path)+corruptSuffix
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return fmt.Errorf("cannot watch the journal's folder %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // in the runtime's poller: Close ends a Read
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer stop()
		buf := make([]byte, 16*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if strings.HasPrefix(name, prefix) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
					changed()
				}
			}
		}
	}()
	return nil
}
