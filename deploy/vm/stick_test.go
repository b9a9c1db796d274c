package vm

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs mkfs.vfat, fsck.fat and mtools (not with -short)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (run make lab-deps)", tool)
		}
	}
}

func TestMakeStick(t *testing.T) {
	requireTools(t, "mkfs.vfat", "fsck.fat", "mdir", "mcopy", "mke2fs")
	for _, tc := range []struct {
		kind    StickKind
		offset  int64
		fatOK   bool
		hasFree string // substring of mdir output; "" to skip
	}{
		{StickFAT32, 1 << 20, true, "bytes free"},
		{StickNoTable, 0, true, "bytes free"},
		{StickGPT, 1 << 20, true, "bytes free"},
		{StickFAT16, 1 << 20, true, "bytes free"},
		{StickExt2, 1 << 20, false, ""},
		{StickRaw, 1 << 20, false, ""},
		{StickFull, 1 << 20, true, "FILLER"},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "stick.img")
			if err := MakeStick(img, StickSpec{Kind: tc.kind, SizeMiB: 40}); err != nil {
				t.Fatal(err)
			}
			off, err := PartitionOffset(img)
			if err != nil || off != tc.offset {
				t.Fatalf("PartitionOffset = %d, %v; want %d", off, err, tc.offset)
			}
			if _, err := CheckFAT(img); (err == nil) != tc.fatOK {
				t.Errorf("CheckFAT err = %v, want ok=%v", err, tc.fatOK)
			}
			if tc.hasFree != "" {
				out, err := StickDir(img, "/")
				if err != nil || !strings.Contains(out, tc.hasFree) {
					t.Errorf("StickDir = %q, %v", out, err)
				}
			}
		})
	}
}

func TestFullStickIsFull(t *testing.T) {
	requireTools(t, "mkfs.vfat", "mdir", "mcopy")
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := MakeStick(img, StickSpec{Kind: StickFull, SizeMiB: 40}); err != nil {
		t.Fatal(err)
	}
	out, err := StickDir(img, "/")
	if err != nil {
		t.Fatal(err)
	}
	m := bytesFree.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no free space in %q", out)
	}
	if free := strings.ReplaceAll(m[1], " ", ""); len(free) > 6 { // >= 1 000 000 bytes
		t.Errorf("%s bytes free, want under 1 MiB", free)
	}
}
