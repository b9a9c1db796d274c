package firmware

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mounter mounts and unmounts a stick's filesystem: directly with mount(2)
// as root (DirectMounter), or through PID 1 and the mount helper as the
// agent's own user (SystemdMounter).
type Mounter interface {
	// Mount mounts req.Source on req.Target (created if needed), or with
	// req.Remount changes the flags of the mount at req.Target.
	Mount(ctx context.Context, req MountRequest) error
	// Unmount unmounts dir, never lazily: a busy mount is an error.
	Unmount(ctx context.Context, dir string) error
}

// MountRequest is one mount.
type MountRequest struct {
	Source   string // /dev/sda1
	Target   string // /run/boxagent/usb/<id>
	FSType   string // vfat, exfat, ext4
	ReadOnly bool
	Remount  bool
}

// MountData is the filesystem data the agent mounts a stick's filesystem
// with. vfat: flush writes early (a stick pulled late loses less), UTF-8
// names, names kept as typed in mixed case (recovery matches update.zip
// exactly), and a filesystem error turns the mount read-only rather than
// writing on.
func MountData(fstype string) string {
	switch fstype {
	case "vfat":
		return "flush,utf8=1,shortname=mixed,errors=remount-ro"
	case "ext4":
		return "errors=remount-ro"
	}
	return ""
}

// Mount is a line of /proc/self/mountinfo.
type Mount struct {
	MajMin  string // "8:1"
	Dir     string
	FSType  string
	Source  string
	Options string // per-mount options: "rw,nosuid,…"
}

// ReadOnly says whether the mount is read-only.
func (m Mount) ReadOnly() bool {
	for _, o := range strings.Split(m.Options, ",") {
		if o == "ro" {
			return true
		}
	}
	return false
}

// Mounts reads mountinfo (proc/self/mountinfo under hp.Proc).
func Mounts(hp HostPaths) ([]Mount, error) {
	f, err := os.Open(filepath.Join(hp.Proc, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %w", err)
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m, ok := parseMountinfo(sc.Text()); ok {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// parseMountinfo decodes "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
func parseMountinfo(line string) (Mount, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, false
	}
	a, b := strings.Fields(pre), strings.Fields(post)
	if len(a) < 6 || len(b) < 2 {
		return Mount{}, false
	}
	return Mount{MajMin: a[2], Dir: unescapeMount(a[4]), Options: a[5], FSType: b[0], Source: unescapeMount(b[1])}, true
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountsOf returns the mounts of the block device with number majmin.
func MountsOf(hp HostPaths, majmin string) ([]Mount, error) {
	all, err := Mounts(hp)
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, m := range all {
		if m.MajMin == majmin {
			out = append(out, m)
		}
	}
	return out, nil
}

// partitionMajMin is the device number of a stick's partition dev ("sda1"
// or, for a superfloppy, "sda").
func partitionMajMin(hp HostPaths, s Stick, dev string) string {
	if dev == s.Name {
		return readSysString(filepath.Join(hp.Sys, "block", s.Name, "dev"))
	}
	return readSysString(filepath.Join(hp.Sys, "block", s.Name, dev, "dev"))
}
