package audio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/internal/inotify"
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
	w     *inotify.Watcher
	once  sync.Once
	wants map[int]map[string]bool // watch descriptor → names that matter there
}

// WatchSockets arms a SocketWatch for paths.
func WatchSockets(paths []string) (*SocketWatch, error) {
	iw, err := inotify.New()
	if err != nil {
		return nil, fmt.Errorf("cannot watch for the sound server: %w", err)
	}
	w := &SocketWatch{w: iw, wants: map[int]map[string]bool{}}
	for _, p := range paths {
		dir, name := nearestFolder(filepath.Clean(p))
		wd, err := iw.Add(dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_ONLYDIR)
		if err != nil {
			continue // unreadable: another path may still tell
		}
		if w.wants[wd] == nil {
			w.wants[wd] = map[string]bool{}
		}
		w.wants[wd][name] = true
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
	for {
		evs, err := w.w.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watching for the sound server: %w", err)
		}
		for _, ev := range evs {
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 || w.wants[ev.Wd][ev.Name] {
				return nil
			}
		}
	}
}

// Close releases the watch.
func (w *SocketWatch) Close() {
	w.once.Do(func() { w.w.Close() })
}
