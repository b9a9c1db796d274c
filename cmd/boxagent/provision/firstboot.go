package provision

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// BootDirs are where the boot partition is mounted, in the order they are
// searched: Debian and Raspberry Pi OS use /boot/firmware, others /boot.
var BootDirs = []string{"/boot/firmware", "/boot"}

// Names of the files on the boot partition.
const (
	ProvisionName     = "provision.toml"
	NetworkConfigName = "network-config"
)

// ErrNothingToDo is returned by FirstBoot when the boot partition holds
// neither file.
var ErrNothingToDo = errors.New("no provision.toml or network-config on the boot partition")

// FirstBootResult is what FirstBoot applied and where the files went.
type FirstBootResult struct {
	*Result
	Dir     string            `json:"dir"`
	Renamed map[string]string `json:"renamed,omitempty"` // old path → new path
}

// FirstBoot applies the provision.toml and/or cloud-init NoCloud
// network-config found in the first of dirs that has one, to o.Root (the
// running system), and then renames each file it applied to
// <name>.applied-<UTC stamp> so that it never runs twice. A file that is
// invalid is left where it is, nothing written: fixed on a PC, it is
// applied at the next boot.
func FirstBoot(dirs []string, o Options) (*FirstBootResult, error) {
	o.FirstBoot = true
	if o.Now == nil {
		o.Now = time.Now
	}
	var dir string
	var found []string
	for _, d := range dirs {
		for _, name := range []string{ProvisionName, NetworkConfigName} {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				found = append(found, p)
			}
		}
		if len(found) > 0 {
			dir = d
			break
		}
	}
	if dir == "" {
		return nil, ErrNothingToDo
	}
	f := &File{}
	var notes []string
	for _, p := range found {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", p, err)
		}
		if filepath.Base(p) == ProvisionName {
			if f, err = Parse(p, data); err != nil {
				return nil, err
			}
			o.Source = p
			continue
		}
		nc, err := ParseNetworkConfig(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f.Merge(nc)
		notes = append(notes, nc.Notes...)
		if o.Source == "" {
			o.Source = p
		}
	}
	// The merged networks are checked by the same rules as provision.toml.
	if err := f.Validate(o.Source); err != nil {
		return nil, err
	}
	res, err := Apply(f, o)
	if err != nil {
		return nil, err
	}
	res.Notes = append(notes, res.Notes...)
	out := &FirstBootResult{Result: res, Dir: dir}
	if o.DryRun {
		return out, nil
	}
	stamp := o.Now().UTC().Format("20060102T150405Z")
	out.Renamed = map[string]string{}
	for _, p := range found {
		to := p + ".applied-" + stamp
		if err := os.Rename(p, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("applied, but cannot rename %s (it would be applied again): %w", p, err)
		}
		out.Renamed[p] = to
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return out, nil
}
