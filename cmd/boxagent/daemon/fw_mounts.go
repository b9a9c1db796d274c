package daemon

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/firmware"
)

// stickMounts maps each stick's kernel name to its partitions' mounts; a
// stick without any has an empty list (not mounted), one whose mounts
// cannot be read is left out (not known).
func (d *firmwareDomain) stickMounts(sticks []firmware.Stick) map[string][]apitype.FWMount {
	hp := d.hostPaths()
	all, err := firmware.Mounts(hp)
	if err != nil {
		d.log.Debug("cannot read the mounts", "err", err)
		return nil
	}
	out := map[string][]apitype.FWMount{}
	for _, s := range sticks {
		list := []apitype.FWMount{}
		devs := []string{s.Name}
		for _, p := range s.Disk.Partitions {
			devs = append(devs, s.PartitionDevice(p))
		}
		for _, dev := range devs {
			f := filepath.Join(hp.Sys, "block", s.Name, dev, "dev")
			if dev == s.Name {
				f = filepath.Join(hp.Sys, "block", s.Name, "dev")
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			majmin := strings.TrimSpace(string(raw))
			for _, m := range all {
				if m.MajMin != majmin {
					continue
				}
				fm := apitype.FWMount{Device: dev, Dir: m.Dir, ReadOnly: m.ReadOnly()}
				var st unix.Statfs_t
				if unix.Statfs(m.Dir, &st) == nil {
					free := int64(st.Bavail) * int64(st.Bsize)
					fm.Free = &free
				}
				list = append(list, fm)
			}
		}
		out[s.Name] = list
	}
	return out
}
