package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/internal/inotify"
)

// WatchQuarantined calls changed whenever a damaged journal moved aside
// next to path (what Quarantined lists) comes or goes: inotify on the
// folder, so that what shows them (status) follows someone removing one
// without being asked again. It returns once the watch is set; the watch
// ends with ctx.
func WatchQuarantined(ctx context.Context, path string, changed func()) error {
	return watchQuarantined(ctx, path, func(string) { changed() })
}

// watchQuarantined is WatchQuarantined telling the name that changed
// (none for an overflow).
func watchQuarantined(ctx context.Context, path string, changed func(name string)) error {
	w, err := inotify.New()
	if err != nil {
		return fmt.Errorf("cannot watch the journal's folder: %w", err)
	}
	dir, prefix := filepath.Dir(path), filepath.Base(path)+corruptSuffix
	if _, err := w.Add(dir, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		w.Close()
		return fmt.Errorf("cannot watch the journal's folder: %w", err)
	}
	go func() {
		defer w.Close()
		for {
			evs, err := w.Read(ctx) // ends with ctx
			if err != nil {
				return
			}
			for _, ev := range evs {
				if strings.HasPrefix(ev.Name, prefix) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
					changed(ev.Name)
				}
			}
		}
	}()
	return nil
}
