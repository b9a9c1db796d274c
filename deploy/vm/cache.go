package vm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Cache is what deploy/vm/lab-deps.sh (or lab-deps-armhf.sh) prepared: the
// unpacked Debian kernel, the initramfs and the btvirt shim, and for the
// armhf board its root.
type Cache struct {
	Arch          Arch   // the board's architecture
	Dir           string // .cache/lab: the board lock (both boards take it)
	KernelVersion string // e.g. 6.1.0-56-amd64
	KernelRoot    string // the unpacked kernel package (boot/, lib/modules/)
	Kernel        string // Dir/vmlinux-VERSION (boots faster), else KernelRoot/boot/vmlinuz-VERSION
	Initrd        string // Dir/initramfs.cpio.gz
	BtvirtShim    string // Dir/btvirt-sco-shim.so
	Init          string // deploy/vm/init.sh, stage 2 of the guest's PID 1
	// Root is the board's own root (armhf); "" means the host /.
	Root string
	// Binds are host paths bound into Root at the same path.
	Binds []string
}

// ErrNoCache means lab-deps.sh has not been run.
var ErrNoCache = errors.New("the lab cache is not built (run make lab-deps)")

// RepoRoot returns the root of the boxagent checkout: the nearest directory
// above the working directory holding boxagent's go.mod, else the one this
// file was compiled from.
func RepoRoot() (string, error) {
	if dir, err := os.Getwd(); err == nil {
		for d := dir; ; d = filepath.Dir(d) {
			if isRepo(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isRepo(d) {
			return d, nil
		}
	}
	return "", errors.New("cannot find the boxagent repository above the working directory")
}

func isRepo(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == "github.com/boxagent/boxagent"
		}
	}
	return false
}

// FindCache locates the lab cache of the board LAB_ARCH names: $LAB_CACHE,
// else .cache/lab in the repo; the armhf board's in $LAB_ARMHF_CACHE, else
// /var/cache/boxagent-lab/armhf (its lock still in the former). It returns
// an error wrapping ErrNoCache when something is missing.
func FindCache() (*Cache, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	arch, err := BoardArch()
	if err != nil {
		return nil, err
	}
	dir := os.Getenv("LAB_CACHE")
	if dir == "" {
		dir = filepath.Join(root, ".cache", "lab")
	}
	if arch == ArchArmhf {
		return findArmhfCache(root, dir)
	}
	v, err := os.ReadFile(filepath.Join(dir, "kernel.version"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the kernel version in %s: %w", dir, ErrNoCache)
	}
	kver := string(bytes.TrimSpace(v))
	c := &Cache{
		Arch:          ArchAmd64,
		Dir:           dir,
		KernelVersion: kver,
		KernelRoot:    filepath.Join(dir, "kernel"),
		Kernel:        filepath.Join(dir, "kernel", "boot", "vmlinuz-"+kver),
		Initrd:        filepath.Join(dir, "initramfs.cpio.gz"),
		BtvirtShim:    filepath.Join(dir, "btvirt-sco-shim.so"),
		Init:          filepath.Join(root, "deploy", "vm", "init.sh"),
	}
	if v := filepath.Join(dir, "vmlinux-"+kver); fileExists(v) {
		c.Kernel = v
	}
	for _, p := range []string{c.Kernel, c.Initrd, c.BtvirtShim, filepath.Join(c.KernelRoot, "lib", "modules", kver, "modules.dep"), c.Init} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("cannot find %s: %w", p, ErrNoCache)
		}
	}
	return c, nil
}

// RequireLab skips the test unless this host can boot the virtual board: run
// as root, with QEMU installed and the lab cache built. It returns the cache.
func RequireLab(t testing.TB) *Cache {
	t.Helper()
	if InGuest() {
		t.Skip("boots the virtual board: already inside it")
	}
	if os.Geteuid() != 0 {
		t.Skip("boots the virtual board: needs root (9p passthrough of the host root)")
	}
	c, err := FindCache()
	if err != nil {
		t.Skipf("boots the virtual board: %v", err)
	}
	if _, err := exec.LookPath(c.Arch.QEMU()); err != nil {
		t.Skipf("boots the virtual board: %s not installed (run make lab-deps)", c.Arch.QEMU())
	}
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
