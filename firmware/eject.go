package firmware

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EjectResult is what Eject did.
type EjectResult struct {
	Stick     StickInfo `json:"stick"`
	Unmounted []string  `json:"unmounted,omitempty"`
	Message   string    `json:"message"`
}

// Eject makes the stick safe to pull: every filesystem on it synced and
// unmounted (never lazily), then the disk's write cache flushed.
func (s *Stager) Eject(ctx context.Context, st Stick) (EjectResult, error) {
	res := EjectResult{Stick: StickInfo{Name: st.Name, Serial: st.Serial, Vendor: st.Vendor, Model: st.Model, Size: st.Size}}
	devs := []string{st.Name}
	for _, p := range st.Disk.Partitions {
		if d := st.PartitionDevice(p); !slices.Contains(devs, d) {
			devs = append(devs, d)
		}
	}
	all, err := Mounts(s.Paths)
	if err != nil {
		return res, err
	}
	for _, dev := range devs {
		mm := partitionMajMin(s.Paths, st, dev)
		if mm == "" {
			continue
		}
		// Deepest first, should something be mounted inside the stick.
		var dirs []string
		for _, m := range all {
			// Once per path: in a namespace that receives PID 1's mounts
			// (PrivateMounts=, SystemdMounter) one mount shows twice,
			// also under the ReadWritePaths= bind it hides behind.
			if m.MajMin == mm && !slices.Contains(dirs, m.Dir) {
				dirs = append(dirs, m.Dir)
			}
		}
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := syncFS(d); err != nil {
				return res, s.ioErr("cannot sync "+d, err)
			}
			if err := s.Mounter.Unmount(ctx, d); err != nil {
				return res, err
			}
			res.Unmounted = append(res.Unmounted, d)
		}
	}
	// fsync on the disk node flushes its write cache (a SCSI SYNCHRONIZE
	// CACHE on a USB stick).
	if f, err := os.OpenFile(filepath.Join(s.Paths.Dev, st.Name), os.O_RDONLY, 0); err == nil {
		serr := f.Sync()
		f.Close()
		if serr != nil && goneErr(serr) {
			return res, s.ioErr("cannot flush the stick", serr)
		}
	}
	res.Message = fmt.Sprintf("%s is safe to pull", describe(st))
	return res, nil
}

func describe(st Stick) string {
	d := strings.TrimSpace(st.Vendor + " " + st.Model)
	if d == "" {
		return "the stick " + st.Name
	}
	return fmt.Sprintf("the stick %s (%s)", st.Name, d)
}
