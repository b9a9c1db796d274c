package firmware

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

const testScript = "echo boxagent: starting recovery to install update.zip\nrun recovery_from_flash\n"

// TestUBootScript: the bytes are mkimage's, byte for byte (with
// SOURCE_DATE_EPOCH=0), when mkimage (Debian package u-boot-tools) is
// there; the header's fields and CRCs are checked either way.
func TestUBootScript(t *testing.T) {
	img := UBootScript("aml_autoscript", testScript)
	if len(img) != 64+8+len(testScript) || binary.BigEndian.Uint32(img) != 0x27051956 {
		t.Fatalf("image % x", img[:16])
	}
	hdr := slices.Clone(img[:64])
	hcrc := binary.BigEndian.Uint32(hdr[4:])
	binary.BigEndian.PutUint32(hdr[4:], 0)
	if crc32.ChecksumIEEE(hdr) != hcrc || crc32.ChecksumIEEE(img[64:]) != binary.BigEndian.Uint32(img[24:]) {
		t.Error("header or data CRC-32 wrong")
	}
	if img[30] != 6 || binary.BigEndian.Uint32(img[64:]) != uint32(len(testScript)) || binary.BigEndian.Uint32(img[68:]) != 0 || string(img[72:]) != testScript {
		t.Errorf("type %d, image list % x", img[30], img[64:72])
	}
	mkimage, err := exec.LookPath("mkimage")
	if err != nil {
		t.Skipf("no mkimage (Debian package u-boot-tools) to compare with: %v", err)
	}
	dir := t.TempDir()
	src, out := filepath.Join(dir, "script"), filepath.Join(dir, "aml_autoscript")
	must(t, os.WriteFile(src, []byte(testScript), 0o644))
	cmd := exec.Command(mkimage, "-A", "arm", "-O", "linux", "-T", "script", "-C", "none", "-a", "0", "-e", "0", "-n", "aml_autoscript", "-d", src, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	must(t, err)
	if !bytes.Equal(img, want) {
		t.Errorf("differs from mkimage:\n got % x\nwant % x", img, want)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// amlogicTarget is the stage fixture's target with the Amlogic profile's
// two extra files: the script from the profile, the parameters from the
// profile unless the package has its own.
func amlogicTarget(f *stageFixture) Target {
	t := f.target
	t.Extra = []ExtraSpec{
		{Name: "aml_autoscript", Default: UBootScript("aml_autoscript", testScript)},
		{Name: "factory_update_param.aml", Default: []byte("--update_package=/udisk/update.zip\n")},
	}
	return t
}

// TestStageExtraFiles: the extra files are planned (with their source),
// staged beside the package and verified from the stick; the package's
// own copy wins over the profile's; a leftover of theirs is cleaned; a
// file nobody provides is refused before anything is written.
func TestStageExtraFiles(t *testing.T) {
	f := newStageFixture(t, fakeStick{})
	own := []byte("--update_package=/udisk/update.zip\n--wipe_cache\n")
	data := buildZip(t, updateEntries(entry{"tag.txt", []byte("v1")}, entry{"factory_update_param.aml", own}), "")
	a := f.add(t, data)
	tg := amlogicTarget(f)

	plan, err := f.stager.PlanExtras(a.SHA256, tg)
	if err != nil || len(plan) != 2 || plan[0].Source != "profile" || plan[1].Source != "package" || plan[1].SHA256 != shaHex(own) {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	os.WriteFile(filepath.Join(f.content, "EXTRA2.PRT"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(f.content, "aml_autoscript"), []byte("an old script"), 0o644)
	res, err := f.stager.Stage(context.Background(), a.SHA256, f.stick, "", tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.files(t); !slices.Equal(got, []string{"aml_autoscript", "factory_update_param.aml", "update.zip"}) {
		t.Errorf("stick holds %v", got)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "factory_update_param.aml")); !bytes.Equal(got, own) {
		t.Errorf("factory_update_param.aml is %q, want the package's own", got)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "aml_autoscript")); !bytes.Equal(got, tg.Extra[0].Default) {
		t.Error("aml_autoscript is not the profile's script")
	}
	if !slices.Equal(res.Cleaned, []string{"EXTRA2.PRT"}) || len(res.Extra) != 2 || res.Extra[0].SHA256 != plan[0].SHA256 {
		t.Errorf("result %+v", res)
	}

	// No default and not in the package: refused, nothing written.
	b := f.add(t, pkg(t, "v2"))
	tg.Extra = append(tg.Extra, ExtraSpec{Name: "recovery.img"})
	if _, err := f.stager.PlanExtras(b.SHA256, tg); !errors.Is(err, ErrMissingExtra) {
		t.Errorf("plan without recovery.img: %v", err)
	}
	before := f.files(t)
	if _, err := f.stager.Stage(context.Background(), b.SHA256, f.stick, "", tg, nil); !errors.Is(err, ErrMissingExtra) {
		t.Errorf("stage without recovery.img: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(f.content, "update.zip")); !bytes.Equal(got, data) || !slices.Equal(f.files(t), before) {
		t.Error("the refused staging changed the stick")
	}
}

// TestStageStoreRotted: the copy is not hashed on the way; a store copy
// that changed since its import fails the verification from the stick,
// which then names the store as the culprit; nothing takes the
// package's name.
func TestStageStoreRotted(t *testing.T) {
	f := newStageFixture(t, fakeStick{})
	a := f.add(t, pkg(t, "v1"))
	p := filepath.Join(f.store.Dir(), a.SHA256)
	b, err := os.ReadFile(p)
	must(t, err)
	b[len(b)/2] ^= 1
	must(t, os.WriteFile(p, b, 0o644))
	_, err = f.stager.Stage(context.Background(), a.SHA256, f.stick, "", f.target, nil)
	if !errors.Is(err, ErrReadBack) {
		t.Fatalf("Stage from a rotted store copy: %v, want ErrReadBack", err)
	}
	if got := f.files(t); len(got) != 0 {
		t.Errorf("stick holds %v", got)
	}
}

// TestCleanMounted: what an agent killed mid-copy leaves on a stick it
// mounted (a read-write mount, partial temporary copies) is removed at
// the next start, and the mount turns read-only; other mounts are left.
func TestCleanMounted(t *testing.T) {
	f := newStageFixture(t, fakeStick{})
	dir := filepath.Join(f.h.hp.MountBase, "LABSTICK01")
	must(t, f.h.Mount(context.Background(), MountRequest{Source: filepath.Join(f.h.hp.Dev, "sda1"), Target: dir, FSType: "vfat"}))
	for _, n := range []string{TempName, "EXTRA1.PRT", "update.zip", "notes.PRT"} {
		must(t, os.WriteFile(filepath.Join(f.content, n), []byte("x"), 0o644))
	}
	removed, err := f.stager.CleanMounted(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{filepath.Join(dir, "EXTRA1.PRT"), filepath.Join(dir, TempName)}) {
		t.Errorf("removed %v", removed)
	}
	if got := f.files(t); !slices.Equal(got, []string{"notes.PRT", "update.zip"}) {
		t.Errorf("stick holds %v", got)
	}
	if len(f.h.mounts) != 1 || !f.h.mounts[0].ReadOnly() {
		t.Errorf("mounts %+v", f.h.mounts)
	}
}
