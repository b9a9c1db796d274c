//go:build lab

package firmware

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// The guest side of TestLab (lab_host_test.go): these run inside the
// virtual board, where the sticks are QEMU usb-storage devices on xHCI and
// the kernel's own usb-storage, sd and vfat drivers handle them.

// guestLab is one guest test's world: the real /sys, /dev and /proc, a
// store in the guest's RAM, the stick watcher.
type guestLab struct {
	hp     HostPaths
	store  *Store
	stager *Stager
	w      *Watcher
	events chan StickEvent
	target Target
}

func newGuestLab(t *testing.T) *guestLab {
	t.Helper()
	vm.RequireGuest(t)
	guest.Modprobe(t, guest.USBStorageModules...)
	base := filepath.Join(t.TempDir(), "usb")
	hp := HostPaths{Sys: "/sys", Dev: "/dev", Proc: "/proc", MountBase: base}
	g := &guestLab{hp: hp, events: make(chan StickEvent, 64)}
	var err error
	g.store, err = OpenStore(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	g.w, err = WatchSticks(WatchOptions{Paths: hp, Logger: quiet, OnEvent: func(e StickEvent) {
		select {
		case g.events <- e:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.w.Close() })
	pol, err := NewPolicy("signapk", []string{filepath.Join(os.Getenv(envLabDir), labCert)}, []string{AndroidUpdateBinary})
	if err != nil {
		t.Fatal(err)
	}
	g.target = Target{Board: "virtual-board", Package: "update.zip", Filesystems: []string{"vfat"}, Policy: pol, Instructions: "lab"}
	g.stager = &Stager{Store: g.store, Mounter: DirectMounter{}, Paths: hp, Logger: quiet}
	return g
}

// importPkg imports one of the host's packages into the store.
func (g *guestLab) importPkg(t *testing.T, name string) Artifact {
	t.Helper()
	f, err := os.Open(filepath.Join(os.Getenv(envLabDir), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	start := time.Now()
	a, err := g.store.Import(context.Background(), f, g.target.Policy, WithSize(fi.Size()))
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	want := os.Getenv("FW_SHA_" + strings.ToUpper(strings.TrimSuffix(name, ".zip")))
	if a.SHA256 != want {
		t.Fatalf("imported %s as %s, the host made %s", name, a.SHA256, want)
	}
	t.Logf("imported %s (%s) in %s", name, human(a.Size), time.Since(start).Round(time.Millisecond))
	return a
}

// see waits for the watcher to know the disk ("/dev/sda").
func (g *guestLab) see(t *testing.T, disk string) Stick {
	t.Helper()
	name := filepath.Base(disk)
	deadline := time.After(30 * time.Second)
	for {
		if s, ok := g.w.Get(name); ok && s.Name == name {
			return s
		}
		select {
		case <-g.events:
		case <-deadline:
			t.Fatalf("the watcher did not see %s; it knows %+v", name, g.w.List())
		}
	}
}

// TestGuestBootStick: a stick plugged before the agent starts is found by
// the sysfs scan, without any uevent.
// TestGuestHashesWithKernel: in the board the kernel computes the sums
// of the passes, so the unit tests run here (kernelHashedTests) and the
// stagings check the kernel's SHA-256 and SHA-1, not Go's.
func TestGuestHashesWithKernel(t *testing.T) {
	vm.RequireGuest(t)
	for _, alg := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		if name, why := kernelhash.Backend(alg); !strings.HasPrefix(name, "kernel") {
			t.Errorf("%v is hashed by %s (%v), want the kernel", alg, name, why)
		}
	}
}

func TestGuestBootStick(t *testing.T) {
	vm.RequireGuest(t)
	u, err := guest.OpenUevents()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	guest.Modprobe(t, guest.USBStorageModules...)
	hp := HostPaths{Sys: "/sys", Dev: "/dev", Proc: "/proc"}
	found := func() (Stick, bool) {
		l, _ := Scan(hp)
		for _, s := range l {
			if s.Serial == "BOOTSTICK01" {
				return s, true
			}
		}
		return Stick{}, false
	}
	if _, ok := found(); !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := u.Wait(ctx, func(ev guest.Uevent) bool {
			_, ok := found()
			return ok
		}); err != nil {
			t.Fatalf("the boot stick never appeared: %v", err)
		}
	}
	w, err := WatchSticks(WatchOptions{Paths: hp, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var s Stick
	for _, x := range w.List() {
		if x.Serial == "BOOTSTICK01" {
			s = x
		}
	}
	if s.Name == "" {
		t.Fatalf("the watcher's first scan missed the boot stick: %+v", w.List())
	}
	p, err := s.Disk.Pick("vfat")
	if err != nil || p.FS != "fat32" || p.Label != "BOOTSTICK" || !s.Removable || s.Vendor != "QEMU" {
		t.Errorf("boot stick %+v, partition %+v, %v", s, p, err)
	}
	t.Logf("boot stick: %s serial %s %s %q, %s, %s %s", s.Name, s.Serial, s.USBPath, s.Vendor+" "+s.Model, human(s.Size), p.FS, p.Label)
}

// TestGuestStage: hot-plug, stage a signed package, verify it from the
// stick, eject, unplug. The host checks the image afterwards.
func TestGuestStage(t *testing.T) {
	g := newGuestLab(t)
	a := g.importPkg(t, labSmall)
	plug := guest.PlugStick(t, "fat32")
	st := g.see(t, plug.Disk)
	if st.Serial != "LABfat32" || st.Disk.Scheme != "mbr" || st.ReadOnly {
		t.Errorf("stick %+v", st)
	}
	var last StageProgress
	cached := -1
	g.stager.written = func(path string, _, _ int64) { cached = cachedPages(t, path) } // one region: the whole copy
	res, err := g.stager.Stage(context.Background(), a.SHA256, st, "", g.target, func(p StageProgress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if last.Phase != "verify" || last.Done != a.Size || res.Signer == nil || res.Stick.Device != st.Name+"1" || res.Stick.Filesystem != "fat32" {
		t.Errorf("result %+v, last progress %+v", res, last)
	}
	// The mount is ours, read-only, with the options the board needs.
	mm, _ := MountsOf(g.hp, partitionMajMin(g.hp, st, res.Stick.Device))
	if len(mm) != 1 || !mm[0].ReadOnly() || !strings.Contains(mm[0].Options, "nosuid") || !strings.Contains(mm[0].Options, "noexec") {
		t.Errorf("mounts %+v", mm)
	}
	if cached != 0 {
		t.Errorf("%d pages of %s stayed in the page cache: the verification would read the cache, not the stick", cached, TempName)
	}
	if rep, err := VerifyFile(context.Background(), filepath.Join(res.Mountpoint, "update.zip"), g.target.Policy); err != nil || rep.SHA256 != a.SHA256 {
		t.Errorf("update.zip on the stick: %+v, %v", rep, err)
	}
	ej, err := g.stager.Eject(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("staged %s in %.2fs + verified in %.2fs; %s", human(a.Size), res.WriteSeconds, res.VerifySeconds, ej.Message)
	if mm, _ := MountsOf(g.hp, partitionMajMin(g.hp, st, res.Stick.Device)); len(mm) != 0 {
		t.Errorf("still mounted after eject: %+v", mm)
	}
	plug.Unplug(t)
}

// TestGuestRefusals: a full stick, a write-protected one and an exFAT one
// are refused with their reason, and nothing is written (the host
// compares the images).
func TestGuestRefusals(t *testing.T) {
	g := newGuestLab(t)
	a := g.importPkg(t, labSmall)
	for _, tc := range []struct {
		stick string
		want  error
	}{
		{"full", ErrNoSpace},
		{"ro", ErrReadOnly},
		{"exfat", ErrUnsupportedFS},
	} {
		t.Run(tc.stick, func(t *testing.T) {
			plug := guest.PlugStick(t, tc.stick)
			if tc.stick == "ro" {
				setReadOnly(t, plug.Disk)
			}
			st := g.see(t, plug.Disk)
			_, err := g.stager.Stage(context.Background(), a.SHA256, st, "", g.target, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Stage on the %s stick: %v, want %v", tc.stick, err, tc.want)
			}
			t.Logf("refused: %v", err)
			if _, err := g.stager.Eject(context.Background(), st); err != nil {
				t.Error(err)
			}
			plug.Unplug(t)
		})
	}
}

// setReadOnly write-protects a disk as its switch would (BLKROSET).
func setReadOnly(t *testing.T, disk string) {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, 1); err != nil {
		t.Fatalf("BLKROSET %s: %v", disk, err)
	}
}

// TestGuestUnplugMidCopy pulls the stick a quarter into the copy: a clear
// error; plugged back, the stick holds no update.zip (or one that
// verifies), and staging again cleans up and succeeds.
func TestGuestUnplugMidCopy(t *testing.T) {
	g := newGuestLab(t)
	a := g.importPkg(t, labMedium)
	plug := guest.PlugStick(t, "unplug")
	st := g.see(t, plug.Disk)
	pulled := false
	_, err := g.stager.Stage(context.Background(), a.SHA256, st, "", g.target, func(p StageProgress) {
		if !pulled && p.Phase == "write" && p.Done >= p.Total/4 {
			pulled = true
			t.Logf("pulling the stick at %s of %s", human(p.Done), human(p.Total))
			plug.Unplug(t)
		}
	})
	if !pulled {
		t.Fatalf("the copy ended before the pull: %v", err)
	}
	if !errors.Is(err, ErrGone) {
		t.Fatalf("Stage after the pull: %v, want ErrGone", err)
	}
	t.Logf("error: %v", err)
	afterReplug(t, g, "unplug", a)
}

// afterReplug plugs the stick back, looks at it as recovery would, then
// stages again and ejects.
func afterReplug(t *testing.T, g *guestLab, name string, a Artifact) {
	t.Helper()
	plug := guest.PlugStick(t, name)
	st := g.see(t, plug.Disk)
	part := plug.Partitions[0]
	out, _ := exec.Command("fsck.fat", "-n", part).CombinedOutput()
	t.Logf("fsck.fat -n %s after the interruption:\n%s", part, strings.TrimSpace(string(out)))
	dir := guest.Mount(t, part, "vfat", "utf8")
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	t.Logf("on the stick: %v", names)
	if _, err := os.Stat(filepath.Join(dir, "update.zip")); err == nil {
		if _, err := VerifyFile(context.Background(), filepath.Join(dir, "update.zip"), g.target.Policy); err != nil {
			t.Errorf("update.zip after the interruption does not verify: %v", err)
		}
	}
	guest.Unmount(t, dir)
	res, err := g.stager.Stage(context.Background(), a.SHA256, st, "", g.target, nil)
	if err != nil {
		t.Fatalf("staging again: %v", err)
	}
	t.Logf("staged again; cleaned %v; notes %v", res.Cleaned, res.Notes)
	if _, err := g.stager.Eject(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	plug.Unplug(t)
}

// TestGuestKillMidCopy kills the staging process with SIGKILL a quarter
// into the copy (the agent killed, the box keeps power): its mount stays;
// the next staging reuses it, cleans the temporary copy and succeeds.
func TestGuestKillMidCopy(t *testing.T) {
	g := newGuestLab(t)
	a := g.importPkg(t, labMedium)
	plug := guest.PlugStick(t, "kill")
	st := g.see(t, plug.Disk)
	cmd := exec.Command(os.Args[0], "-test.run=^TestGuestHelperStage$", "-test.v")
	cmd.Env = append(os.Environ(), "FW_HELPER_STORE="+g.store.Dir(), "FW_HELPER_DISK="+st.Name, "FW_HELPER_SHA="+a.SHA256,
		"FW_HELPER_BASE="+g.hp.MountBase)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(out)
	var tail []string
	for sc.Scan() {
		line := sc.Text()
		tail = append(tail, line)
		var done, total int64
		if n, _ := fmt.Sscanf(line, "PROGRESS write %d %d", &done, &total); n == 2 && done >= total/4 && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			t.Logf("killed the stager at %s of %s", human(done), human(total))
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("the helper ended before the kill:\n%s", strings.Join(tail, "\n"))
	}
	mm, _ := MountsOf(g.hp, partitionMajMin(g.hp, st, st.Name+"1"))
	if len(mm) != 1 {
		t.Fatalf("mounts after the kill: %+v", mm)
	}
	ents, _ := os.ReadDir(mm[0].Dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name()+"("+strconv.FormatInt(func() int64 { i, _ := e.Info(); return i.Size() }(), 10)+")")
	}
	t.Logf("on the stick after the kill: %v", names)
	if _, err := os.Stat(filepath.Join(mm[0].Dir, "update.zip")); err == nil {
		t.Errorf("update.zip exists after a kill mid-copy")
	}
	res, err := g.stager.Stage(context.Background(), a.SHA256, st, "", g.target, nil)
	if err != nil {
		t.Fatalf("staging after the kill: %v", err)
	}
	if len(res.Cleaned) != 1 || res.Mountpoint != mm[0].Dir {
		t.Errorf("the staging after the kill: cleaned %v, mounted at %s (the killed one's mount: %s)", res.Cleaned, res.Mountpoint, mm[0].Dir)
	}
	if _, err := g.stager.Eject(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	plug.Unplug(t)
}

// TestGuestHelperStage is the process TestGuestKillMidCopy kills.
func TestGuestHelperStage(t *testing.T) {
	if os.Getenv("FW_HELPER_STORE") == "" {
		t.Skip("the process TestGuestKillMidCopy starts and kills")
	}
	store, err := OpenStore(os.Getenv("FW_HELPER_STORE"))
	if err != nil {
		t.Fatal(err)
	}
	hp := HostPaths{Sys: "/sys", Dev: "/dev", Proc: "/proc", MountBase: os.Getenv("FW_HELPER_BASE")}
	st, ok := ReadStick(hp, os.Getenv("FW_HELPER_DISK"))
	if !ok {
		t.Fatal("no stick")
	}
	inspectStick(hp, &st)
	s := &Stager{Store: store, Mounter: DirectMounter{}, Paths: hp, Logger: quiet}
	tg := Target{Board: "virtual-board", Package: "update.zip", Filesystems: []string{"vfat"}, Policy: Policy{Method: MethodNone}}
	_, err = s.Stage(context.Background(), os.Getenv("FW_HELPER_SHA"), st, "", tg, func(p StageProgress) {
		fmt.Printf("PROGRESS %s %d %d\n", p.Phase, p.Done, p.Total)
		if p.Phase == "write" && p.Done >= p.Total/4 {
			time.Sleep(time.Minute) // wait for the kill, mid-copy
		}
	})
	t.Fatalf("the helper was not killed: %v", err)
}

// TestGuestAgent drives the agent as a user would on the serial console:
// boxagent serve (board detected as virtual-board, the lab's certificate
// in [firmware] keys), then fw add, fw sticks, fw stage, fw eject and the
// journal, with a hot-plugged stick. The host checks the image.
func TestGuestAgent(t *testing.T) {
	a := startGuestAgent(t, t.TempDir(), "boxagent.log")
	run := a.run
	out, errOut, code := run("fw", "add", filepath.Join(os.Getenv(envLabDir), labSmall))
	if code != 0 {
		t.Fatalf("fw add: exit %d\n%s%s", code, out, errOut)
	}
	sha := strings.Fields(out)[1]
	if sha != os.Getenv("FW_SHA_SMALL") {
		t.Fatalf("fw add: %s", out)
	}
	plug := guest.PlugStick(t, "agent")
	dev := filepath.Base(plug.Partitions[0])
	// The agent learns of the stick from the same uevent; give it the
	// time to read the partition table.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _, _ = run("fw", "sticks")
		if strings.Contains(out, dev) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("fw sticks:\n%s", out)
	if !strings.Contains(out, dev) || !strings.Contains(out, "fat32") || !strings.Contains(out, "LABagent") {
		t.Fatalf("fw sticks does not show %s", dev)
	}
	start := time.Now()
	// The boot stick is plugged in too: without --device the agent asks
	// which one.
	if _, errOut, code := run("fw", "stage", sha[:12]); code != 1 || !strings.Contains(errOut, "several USB sticks") {
		t.Errorf("fw stage with two sticks and no --device: exit %d\n%s", code, errOut)
	}
	out, errOut, code = run("fw", "stage", sha[:12], "--device", dev)
	t.Logf("fw stage (%s): exit %d\n%s%s", time.Since(start).Round(time.Millisecond), code, out, errOut)
	if code != 0 || !strings.Contains(out, "staged "+sha) || !strings.Contains(out, "At the box (board virtual-board)") ||
		!strings.Contains(errOut, "stage: 100%") {
		t.Fatal("fw stage did not stage")
	}
	out, errOut, code = run("fw", "eject", "--device", dev)
	if code != 0 || !strings.Contains(out, "safe to pull") {
		t.Fatalf("fw eject: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = run("history", "--kind", "fw.stage", "--json")
	for _, want := range []string{sha, `"serial": "LABagent"`, `"board": "virtual-board"`, `"filesystem": "fat32"`, `"instructions"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the journal's fw.stage record lacks %s:\n%s", want, out)
		}
	}
	plug.Unplug(t)
}

// cachedPages counts the file's pages in the page cache (mincore).
func cachedPages(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
