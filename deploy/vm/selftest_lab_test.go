//go:build lab

package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabSelfTests runs the guest package's self-tests (VLAN, DHCP, system
// bus, USB sticks) in one boot, then checks the FAT32 stick on the host.
func TestLabSelfTests(t *testing.T) {
	c := RequireLab(t)
	sticks := map[string]string{}
	for name, kind := range map[string]StickKind{"fat32": StickFAT32, "gpt": StickGPT, "notable": StickNoTable, "ext2": StickExt2} {
		sticks[name] = filepath.Join(t.TempDir(), name+".img")
		if err := MakeStick(sticks[name], StickSpec{Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	img := sticks["fat32"]
	res := RunGoTests(t, "./deploy/vm/guest", Options{Cache: c, Sticks: sticks})
	want, err := os.ReadFile(filepath.Join(res.Dir, "stick-update.sha256"))
	if err != nil {
		t.Fatalf("the guest stick test left no checksum: %v", err)
	}
	if out, err := CheckFAT(img); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	dir, err := StickDir(img, "/update")
	if err != nil || !strings.Contains(dir, "update   zip") && !strings.Contains(dir, "update.zip") {
		t.Errorf("mdir /update = %q, %v", dir, err)
	}
	pkg, err := StickRead(img, "/update/update.zip")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(pkg); hex.EncodeToString(sum[:]) != string(want) {
		t.Errorf("update.zip on the stick differs from what the guest wrote")
	}
	if v, err := StickRead(img, "/update/VERSION.TXT"); err != nil || string(v) != "lab-build 1\n" {
		t.Errorf("VERSION.TXT = %q, %v", v, err)
	}
}
