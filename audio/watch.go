package audio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SocketPaths are the unix socket files of servers' D-Bus ("unix:path=…")
// and native ("unix:…") addresses: where a sound server appears when it
// starts. Other addresses (TCP, abstract sockets) give none.
func SocketPaths(servers []Server) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != "" && filepath.IsAbs(p) && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, s := range servers {
		for _, kv := range strings.Split(strings.TrimPrefix(s.DBus, "unix:"), ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok && strings.HasPrefix(s.DBus, "unix:") {
				add(p)
			}
		}
		if p, ok := strings.CutPrefix(s.Native, "unix:"); ok {
			add(p)
		}
	}
	return out
}

// SocketWatch tells when a sound server may have appeared: a name on the
// way to one of its socket paths was created or moved into its folder
// (inotify on the nearest folder of each path that exists). Armed before a
// connect attempt, it misses nothing that happens after the attempt; a
// socket file a dead server left behind does not wake it, its successor's
// new socket does. No polling.
type SocketWatch struct {
	f     *os.File
	once  sync.Once
	wants map[int32]map[string]bool // watch descriptor → names that matter there
}

// WatchSockets arms a SocketWatch for paths.
func WatchSockets(paths []string) (*SocketWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cannot watch for the sound server: %w", err)
	}
	w := &SocketWatch{f: os.NewFile(uintptr(fd), "inotify"), wants: map[int32]map[string]bool{}}
	for _, p := range paths {
		dir, name := nearestFolder(filepath.Clean(p))
		wd, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_ONLYDIR)
		if err != nil {
			continue // unreadable: another path may still tell
		}
		if w.wants[int32(wd)] == nil {
			w.wants[int32(wd)] = map[string]bool{}
		}
		w.wants[int32(wd)][name] = true
	}
	if len(w.wants) == 0 {
		w.Close()
		return nil, errors.New("cannot watch for the sound server: no folder on the way to its sockets can be watched")
	}
	return w, nil
}

// nearestFolder is the nearest existing folder above p and the name, in
// it, of the next step toward p.
func nearestFolder(p string) (dir, name string) {
	for {
		dir, name = filepath.Dir(p), filepath.Base(p)
		if fi, err := os.Stat(dir); (err == nil && fi.IsDir()) || dir == p {
			return dir, name
		}
		p = dir
	}
}

// Wait returns nil when a name that matters appeared (or a watched folder
// went away: the way to the socket changed), or ctx's error.
func (w *SocketWatch) Wait(ctx context.Context) error {
	w.f.SetReadDeadline(time.Time{}) // an earlier Wait's cancel may have set one
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watching for the sound server: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name := strings.TrimRight(string(nameBytes), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 || w.wants[ev.Wd][name] {
				return nil
			}
		}
	}
}

// aLongTimeAgo is a read deadline that has passed: it ends a Read.
var aLongTimeAgo = time.Unix(1, 0)

// Close releases the watch.
func (w *SocketWatch) Close() {
	w.once.Do(func() { w.f.Close() })
}
