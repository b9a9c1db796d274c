package vm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeArmhfCache lays out what lab-deps-armhf.sh leaves, empty files.
func fakeArmhfCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	kroot := filepath.Join(dir, "kernel-6.1.0-50-armmp")
	for _, p := range []string{kroot + "/boot/vmlinuz-6.1.0-50-armmp", kroot + "/lib/modules/6.1.0-50-armmp/modules.dep",
		dir + "/initrd.gz", dir + "/shim.so", dir + "/root/usr/bin/sh"} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := "KERNEL_VERSION=6.1.0-50-armmp\nKERNEL_ROOT=" + kroot + "\nKERNEL=" + kroot + "/boot/vmlinuz-6.1.0-50-armmp\n" +
		"INITRD=" + dir + "/initrd.gz\nROOT=" + dir + "/root\nBTVIRT_SHIM=" + dir + "/shim.so\n"
	if err := os.WriteFile(filepath.Join(dir, "board.env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFindCacheArmhf(t *testing.T) {
	armhf, lock := fakeArmhfCache(t), t.TempDir()
	t.Setenv(EnvArch, "armhf")
	t.Setenv(EnvArmhfCache, armhf)
	t.Setenv("LAB_CACHE", lock)
	c, err := FindCache()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := RepoRoot()
	if c.Arch != ArchArmhf || c.Dir != lock || c.Root != armhf+"/root" || !slices.Equal(c.Binds, []string{root, armhf}) {
		t.Fatalf("cache %+v: want armhf, the lock in LAB_CACHE, its root, the checkout and the cache bound", c)
	}
	a := strings.Join(qemuArgs(c, "/tmp/res", Options{}), " ")
	for _, want := range []string{"-M virt,highmem=off", "-cpu cortex-a15", "-smp 1", "console=ttyAMA0", "lab.root=board",
		"lab.bind=" + root + ":" + armhf, "cryptomgr.notests=1", "path=" + armhf + "/root,", "mount_tag=boardroot"} {
		if !strings.Contains(a, want) {
			t.Errorf("qemu arguments lack %q:\n%s", want, a)
		}
	}
	if c.Arch.QEMU() != "qemu-system-arm" || !slices.Contains(c.Arch.GoEnv(), "GOARM=7") {
		t.Errorf("QEMU %s, Go %v", c.Arch.QEMU(), c.Arch.GoEnv())
	}
	res := t.TempDir()
	if err := writeInputs(res, c, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(res, "env")); !strings.Contains(string(b), "export LAB_TTY='ttyAMA0'") || !strings.Contains(string(b), "export LAB_ARCH='armhf'") {
		t.Errorf("knobs:\n%s", b)
	}
	// Missing pieces are ErrNoCache, which RequireLab turns into a skip.
	os.Remove(filepath.Join(armhf, "shim.so"))
	if _, err := FindCache(); err == nil || !strings.Contains(err.Error(), "make lab-deps") {
		t.Errorf("FindCache without the shim: %v", err)
	}
}

func TestBoardArch(t *testing.T) {
	t.Setenv(EnvArch, "")
	if a, err := BoardArch(); a != ArchAmd64 || err != nil {
		t.Errorf("default: %s %v", a, err)
	}
	t.Setenv(EnvArch, "mips")
	if _, err := BoardArch(); err == nil {
		t.Error("LAB_ARCH=mips: no error")
	}
	c := &Cache{}
	a := strings.Join(qemuArgs(c, "/tmp/res", Options{}), " ")
	if !strings.Contains(a, "-M q35") || !strings.Contains(a, "-smp 2") || strings.Contains(a, "lab.root") {
		t.Errorf("amd64 arguments changed:\n%s", a)
	}
}
