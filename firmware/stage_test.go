package firmware

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stageFixture is a fake host with one USB stick, a store and a stager.
type stageFixture struct {
	h       *fakeHost
	store   *Store
	stager  *Stager
	content string // the stick partition's files
	stick   Stick
	target  Target
}

func newStageFixture(t *testing.T, s fakeStick) *stageFixture {
	t.Helper()
	h := newFakeHost(t)
	if s.name == "" {
		s.name, s.serial, s.usb = "sda", "LABSTICK01", true
	}
	mm := h.addStick(s)
	store, err := OpenStore(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	st, ok := ReadStick(h.hp, s.name)
	if !ok {
		t.Fatal("no stick")
	}
	inspectStick(h.hp, &st)
	return &stageFixture{h: h, store: store, content: h.content[mm], stick: st,
		stager: &Stager{Store: store, Mounter: h, Paths: h.hp, Logger: quiet},
		target: Target{Board: "virtual-board", Package: "update.zip", Filesystems: []string{"vfat"},
			Policy: Policy{Method: MethodNone, RequiredEntries: []string{AndroidUpdateBinary}}, Instructions: "hold the key"}}
}

func (f *stageFixture) add(t *testing.T, data []byte) Artifact {
	t.Helper()
	a, err := f.store.Import(context.Background(), bytes.NewReader(data), Policy{Method: MethodNone})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *stageFixture) files(t *testing.T) []string {
	t.Helper()
	return dirNames(t, f.content)
}

func TestStage(t *testing.T) {
	f := newStageFixture(t, fakeStick{})
	v1 := pkg(t, "v1")
	a := f.add(t, v1)
	var phases []string
	res, err := f.stager.Stage(context.Background(), a.SHA256, f.stick, "", f.target, func(p StageProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
		if p.Total != a.Size || p.Done > p.Total {
			t.Errorf("progress %+v", p)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(phases, []string{"write", "verify"}) {
		t.Errorf("phases %v", phases)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); !bytes.Equal(got, v1) {
		t.Error("update.zip on the stick differs from the artifact")
	}
	if got := f.files(t); !slices.Equal(got, []string{"update.zip"}) {
		t.Errorf("stick holds %v", got)
	}
	if res.Stick.Device != "sda1" || res.Stick.Serial != "LABSTICK01" || res.Stick.Filesystem != "fat32" || res.Stick.Label != "LABSTICK" ||
		res.Board != "virtual-board" || res.Instructions != "hold the key" || res.Path != "/update.zip" || res.Replaced {
		t.Errorf("result %+v", res)
	}
	if res.Mountpoint != filepath.Join(f.h.hp.MountBase, "LABSTICK01") {
		t.Errorf("mounted at %s", res.Mountpoint)
	}
	if len(f.h.mounts) != 1 || !f.h.mounts[0].ReadOnly() {
		t.Errorf("after staging the stick stays mounted read-only: %+v", f.h.mounts)
	}
	if cur, err := f.store.Current(); err != nil || cur.SHA256 != a.SHA256 || cur.Staged[0].Serial != "LABSTICK01" {
		t.Errorf("Current = %+v, %v", cur, err)
	}

	// A second staging reuses the (read-only) mount, cleans what an
	// interrupted run left, and replaces the package.
	os.WriteFile(filepath.Join(f.content, TempName), []byte("partial"), 0o644)
	v2 := pkg(t, "v2")
	b := f.add(t, v2)
	res, err = f.stager.Stage(context.Background(), b.SHA256, f.stick, "sda1", f.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replaced || !slices.Equal(res.Cleaned, []string{TempName}) || len(f.h.mounts) != 1 {
		t.Errorf("result %+v, mounts %+v", res, f.h.mounts)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); !bytes.Equal(got, v2) {
		t.Error("update.zip is not v2")
	}

	// Rollback puts v1's exact bytes back.
	res, err = f.stager.Rollback(context.Background(), f.stick, "", f.target, nil)
	if err != nil || res.Artifact != a.SHA256 {
		t.Fatalf("Rollback = %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); !bytes.Equal(got, v1) {
		t.Error("rollback did not put v1 back")
	}

	ej, err := f.stager.Eject(context.Background(), f.stick)
	if err != nil {
		t.Fatal(err)
	}
	if len(ej.Unmounted) != 1 || len(f.h.mounts) != 0 || ej.Message == "" {
		t.Errorf("Eject = %+v, mounts %+v", ej, f.h.mounts)
	}
}

func TestStageRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stick fakeStick
		setup func(f *stageFixture)
		data  []byte
		want  error
		step  string // the StageError's
	}{
		{name: "read-only", stick: fakeStick{name: "sda", serial: "RO000001", usb: true, ro: true}, want: ErrReadOnly, step: "choose"},
		{name: "exfat", stick: fakeStick{name: "sda", serial: "EX000001", usb: true, fs: "exfat"}, want: ErrUnsupportedFS, step: "choose"},
		{name: "full", setup: func(f *stageFixture) {
			f.stager.space = func(string) (fsSpace, error) { return fsSpace{Free: 0, Cluster: 4096}, nil }
		}, want: ErrNoSpace, step: "check space"},
		{name: "mounted read-only by the kernel", setup: func(f *stageFixture) {
			f.stager.space = func(string) (fsSpace, error) { return fsSpace{Free: 1 << 30, Cluster: 4096, ReadOnly: true}, nil }
		}, want: ErrReadOnly, step: "mount"},
		{name: "mounted read-only elsewhere", setup: func(f *stageFixture) {
			f.h.mounts = append(f.h.mounts, Mount{MajMin: "8:1", Dir: "/media/usb", FSType: "vfat", Source: "/dev/sda1", Options: "ro"})
			f.h.writeMountinfo()
		}, want: ErrReadOnly, step: "mount"},
		{name: "missing entry", data: buildZip(t, []entry{{"hello.txt", []byte("hi")}}, ""), want: ErrMissingEntry, step: "read back"},
		{name: "no package name", setup: func(f *stageFixture) { f.target.Package = "" }, want: ErrPolicy, step: "choose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStageFixture(t, tc.stick)
			old := []byte("the old package")
			os.WriteFile(filepath.Join(f.content, "update.zip"), old, 0o644)
			if tc.setup != nil {
				tc.setup(f)
			}
			data := tc.data
			if data == nil {
				data = pkg(t, "v1")
			}
			a := f.add(t, data)
			_, err := f.stager.Stage(context.Background(), a.SHA256, f.stick, "", f.target, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Stage: %v, want %v", err, tc.want)
			}
			var se *StageError
			if !errors.As(err, &se) || se.Step != tc.step || !strings.HasPrefix(err.Error(), tc.step+": ") {
				t.Errorf("Stage: %v, want it from step %q", err, tc.step)
			}
			if got := f.files(t); !slices.Equal(got, []string{"update.zip"}) {
				t.Errorf("stick holds %v after a refusal", got)
			}
			if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); !bytes.Equal(got, old) {
				t.Error("the old update.zip was touched")
			}
			if _, err := f.store.Current(); err == nil {
				t.Error("a refused staging was recorded")
			}
		})
	}
}

// TestStageMakesRoom: too little space for the old package and the new
// one, enough for the new one alone: the old one goes first, and the
// result says so.
func TestStageMakesRoom(t *testing.T) {
	f := newStageFixture(t, fakeStick{})
	os.WriteFile(filepath.Join(f.content, "update.zip"), bytes.Repeat([]byte{1}, 64<<10), 0o644)
	data := pkg(t, "v1")
	a := f.add(t, data)
	f.stager.space = func(string) (fsSpace, error) { return fsSpace{Free: 4096, Cluster: 4096}, nil }
	res, err := f.stager.Stage(context.Background(), a.SHA256, f.stick, "", f.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 || !res.Replaced {
		t.Errorf("result %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); !bytes.Equal(got, data) {
		t.Error("update.zip is not the new package")
	}
}

// TestStageSignApk verifies the copy on the stick with the board's keys: a
// package signed by another key is refused and nothing is left.
func TestStageSignApk(t *testing.T) {
	needTool(t, "openssl")
	k, other := key(t, "rsa2048"), key(t, "other")
	f := newStageFixture(t, fakeStick{})
	f.target.Policy = Policy{Method: MethodSignApk, Certs: []*x509.Certificate{k.cert}, RequiredEntries: []string{AndroidUpdateBinary}}
	good := f.add(t, signWholeFile(t, pkg(t, "good"), k, "sha256", true))
	res, err := f.stager.Stage(context.Background(), good.SHA256, f.stick, "", f.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Signer == nil || res.Signer.Subject != "boxagent test rsa2048" {
		t.Errorf("signer %+v", res.Signer)
	}
	bad := f.add(t, signWholeFile(t, pkg(t, "bad"), other, "sha256", true))
	if _, err := f.stager.Stage(context.Background(), bad.SHA256, f.stick, "", f.target, nil); !errors.Is(err, ErrUnknownSigner) && !errors.Is(err, ErrSignature) {
		t.Fatalf("a package by another key: %v", err)
	}
	if got := f.files(t); !slices.Equal(got, []string{"update.zip"}) {
		t.Errorf("stick holds %v", got)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); shaHex(got) != good.SHA256 {
		t.Error("the refused package replaced the good one")
	}
}

// TestStageCatchesFlippedByte: a byte that changes on the stick between the
// write and the read-back (a flaky stick, a bad cable) is caught by the
// verification from the stick, in the first read block as in a later one
// (the read-back reads ahead in blocks of readBlock), and nothing of the
// staging is left: no temporary copy, no update.zip.
func TestStageCatchesFlippedByte(t *testing.T) {
	needTool(t, "openssl")
	k := key(t, "rsa2048")
	random := make([]byte, 2*readBlock+12345)
	rand.Read(random)
	data := signWholeFile(t, buildZip(t, updateEntries(entry{"big.bin", random}), ""), k, "sha256", true)
	for _, at := range []int{100, readBlock - 1, readBlock, 2*readBlock + 77} {
		f := newStageFixture(t, fakeStick{})
		f.target.Policy = Policy{Method: MethodSignApk, Certs: []*x509.Certificate{k.cert}, RequiredEntries: []string{AndroidUpdateBinary}}
		a := f.add(t, data)
		f.stager.region = readBlock
		f.stager.written = func(path string, off, end int64) {
			if int64(at) < off || int64(at) >= end {
				return
			}
			// In place: the write goes on beside.
			fl, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer fl.Close()
			b := make([]byte, 1)
			fl.ReadAt(b, int64(at))
			b[0] ^= 0xff
			if _, err := fl.WriteAt(b, int64(at)); err != nil {
				t.Error(err)
			}
		}
		_, err := f.stager.Stage(context.Background(), a.SHA256, f.stick, "", f.target, nil)
		if !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), "cannot verify the copy on the stick") {
			t.Errorf("byte %d flipped on the stick: %v", at, err)
		}
		if got := f.files(t); len(got) != 0 {
			t.Errorf("byte %d flipped on the stick: the stick holds %v", at, got)
		}
	}
}

// TestStageReadsBackWhileWriting: the copy is read back region by region
// as it is written, every byte once and in order, and the progress still
// reads as a write then a verification to the last byte.
func TestStageReadsBackWhileWriting(t *testing.T) {
	f := newStageFixture(t, fakeStick{})
	random := make([]byte, 3*readBlock+4321)
	rand.Read(random)
	a := f.add(t, buildZip(t, updateEntries(entry{"big.bin", random}), ""))
	f.stager.region = 256 << 10
	var regions [][2]int64
	f.stager.written = func(_ string, off, end int64) { regions = append(regions, [2]int64{off, end}) }
	var phases []string
	var last StageProgress
	var stick int64 // Written+Verified: one bar that never goes back
	if _, err := f.stager.Stage(context.Background(), a.SHA256, f.stick, "", f.target, func(p StageProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
		if n := p.Written + p.Verified; n < stick || p.Verified > p.Written || p.Written > a.Size {
			t.Errorf("stick progress went back or over: %d after %d, %+v", n, stick, p)
		} else {
			stick = n
		}
		last = p
	}); err != nil {
		t.Fatal(err)
	}
	var at int64
	for _, r := range regions {
		if r[0] != at || r[1] <= r[0] || r[1]-r[0] > 256<<10 {
			t.Fatalf("regions %v", regions)
		}
		at = r[1]
	}
	if at != a.Size {
		t.Errorf("regions end at %d of %d", at, a.Size)
	}
	if !slices.Equal(phases, []string{"write", "verify"}) || last.Done != a.Size || stick != 2*a.Size {
		t.Errorf("phases %v, last %+v, stick progress %d of %d", phases, last, stick, 2*a.Size)
	}
}
