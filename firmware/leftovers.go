package firmware

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/boxagent/boxagent/internal/atomicfile"
)

// extraTemp is the 8.3 name the i-th extra file is written under before
// it is verified and renamed (the ".PRT" of TempName, so that one look
// finds every leftover).
func extraTemp(i int) string { return fmt.Sprintf("EXTRA%d.PRT", i+1) }

// isTempName says whether a name at the stick's root is a temporary copy
// of an interrupted staging.
func isTempName(name string) bool {
	if strings.EqualFold(name, TempName) {
		return true
	}
	u := strings.ToUpper(name)
	return len(u) == len("EXTRA1.PRT") && strings.HasPrefix(u, "EXTRA") && strings.HasSuffix(u, ".PRT") && u[5] >= '1' && u[5] <= '9'
}

// CleanLeftovers removes, from the stick mounted at dir, the temporary
// copies an interrupted staging left (TempName, the extra files' own),
// and syncs the directory. It returns the names removed.
func (s *Stager) CleanLeftovers(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, s.ioErr("cannot read the stick", err)
	}
	var removed []string
	for _, e := range ents {
		if !isTempName(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return removed, s.ioErr("cannot remove the leftover "+e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := atomicfile.SyncDir(dir); err != nil {
			return removed, s.ioErr("cannot sync the stick", err)
		}
	}
	return removed, nil
}

// CleanMounted is CleanLeftovers for every stick still mounted read-write
// under MountBase: an agent killed mid-copy leaves its mount (the kernel
// keeps it) and a partial TempName; at the next start this removes the
// partial copy at once, rather than at the next staging, and leaves the
// mount read-only, clean on the stick, as a finished staging does. It
// returns the paths removed.
func (s *Stager) CleanMounted(ctx context.Context) ([]string, error) {
	mounts, err := Mounts(s.Paths)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, m := range mounts {
		if !strings.HasPrefix(m.Dir, s.Paths.MountBase+"/") || m.ReadOnly() {
			continue
		}
		names, err := s.CleanLeftovers(m.Dir)
		for _, n := range names {
			removed = append(removed, filepath.Join(m.Dir, n))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.Mounter.Mount(ctx, MountRequest{Target: m.Dir, FSType: m.FSType, ReadOnly: true, Remount: true}); err != nil {
			errs = append(errs, fmt.Errorf("cannot remount %s read-only: %w", m.Dir, err))
		}
	}
	return removed, errors.Join(errs...)
}
