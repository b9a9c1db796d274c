package vm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Arch is the virtual board's architecture.
//
// The amd64 board runs the host's own userland (the host / over 9p). The
// armhf board (the 32-bit ARMv7 of most IPTV boxes) runs an armhf Debian
// root that deploy/vm/lab-deps-armhf.sh built with mmdebstrap, on Debian's
// armmp kernel in qemu-system-arm -M virt; the host / is still shared, and
// the paths the guest needs from it (the checkout, the armhf cache) are
// bound into that root at the same path.
type Arch string

// The boards.
const (
	ArchAmd64 Arch = "amd64"
	ArchArmhf Arch = "armhf"
)

// EnvArch selects the board for the harness (make test-lab-armhf, make demo
// ARCH=armhf): amd64 when unset.
const EnvArch = "LAB_ARCH"

// EnvArmhfCache overrides where lab-deps-armhf.sh keeps the armhf board.
const EnvArmhfCache = "LAB_ARMHF_CACHE"

// DefaultArmhfCache is outside the checkout, so that a fresh clone on the
// same machine finds the root (minutes to build) and the kernel.
const DefaultArmhfCache = "/var/cache/boxagent-lab/armhf"

// BoardArch returns the architecture LAB_ARCH asks for.
func BoardArch() (Arch, error) {
	switch a := Arch(os.Getenv(EnvArch)); a {
	case "", ArchAmd64:
		return ArchAmd64, nil
	case ArchArmhf:
		return ArchArmhf, nil
	default:
		return "", fmt.Errorf("cannot boot a %q board: %s is amd64 or armhf", a, EnvArch)
	}
}

// GoEnv is what go build and go test -c need to make binaries for the
// board: appended to the environment.
func (a Arch) GoEnv() []string {
	if a == ArchArmhf {
		return []string{"GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0"}
	}
	return []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"}
}

// QEMU is the system emulator of the board.
func (a Arch) QEMU() string {
	if a == ArchArmhf {
		return "qemu-system-arm"
	}
	return qemuBinary
}

// tty is the serial console's device in the guest.
func (a Arch) tty() string {
	if a == ArchArmhf {
		return "ttyAMA0" // virt's PL011
	}
	return "ttyS0"
}

// findArmhfCache reads the board.env lab-deps-armhf.sh wrote. lockDir is
// the amd64 board's cache folder: both boards queue on the same lock.
func findArmhfCache(root, lockDir string) (*Cache, error) {
	dir := os.Getenv(EnvArmhfCache)
	if dir == "" {
		dir = DefaultArmhfCache
	}
	env, err := readEnvFile(filepath.Join(dir, "board.env"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the armhf board's cache: %w (%w: make lab-deps-armhf)", err, ErrNoCache)
	}
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the board lock's folder: %w", err)
	}
	c := &Cache{
		Arch:          ArchArmhf,
		Dir:           lockDir,
		KernelVersion: env["KERNEL_VERSION"],
		KernelRoot:    env["KERNEL_ROOT"],
		Kernel:        env["KERNEL"],
		Initrd:        env["INITRD"],
		BtvirtShim:    env["BTVIRT_SHIM"],
		Root:          env["ROOT"],
		Init:          filepath.Join(root, "deploy", "vm", "init.sh"),
		// The checkout (stage 2, fixtures, test data, bin/) and the
		// armhf cache (the shim) are read from the host.
		Binds: []string{root, dir},
	}
	for _, p := range []string{c.Kernel, c.Initrd, c.BtvirtShim, filepath.Join(c.Root, "usr", "bin"),
		filepath.Join(c.KernelRoot, "lib", "modules", c.KernelVersion, "modules.dep")} {
		if p == "" || !fileExists(p) {
			return nil, fmt.Errorf("cannot find %q of the armhf board: %w", p, ErrNoCache)
		}
	}
	return c, nil
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m, s.Err()
}

// archOrDefault is c.Arch; a Cache made by hand without one is amd64's.
func (c *Cache) archOrDefault() Arch {
	if c.Arch == "" {
		return ArchAmd64
	}
	return c.Arch
}
