//go:build lab

package systemd

import (
	"archive/zip"
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/firmware/fwtest"
)

// dayPkgSize is the update.zip of the day: 64 MiB, the figure
// docs/BENCHMARKS.md compares between the boards.
const dayPkgSize = 64 << 20

// TestLabDay is the field engineer's day (TestGuestDay) on the systemd
// board of LAB_ARCH: make test runs it on armhf (make test-day-armhf),
// make test-lab on amd64. The host signs the package with a key it makes,
// as a vendor's build does, and checks the stick with fsck.fat after the
// guest ejected it.
func TestLabDay(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side of the lab tests")
	}
	c := vm.RequireLab(t)
	dir := agentFiles(t, c)
	cert, key, err := fwtest.MakeKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, cert, filepath.Join(dir, "signer.pem"))
	pkg, err := fwtest.SignWholeFile(updateZip(t, dayPkgSize), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "update.zip"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	stick := filepath.Join(dir, "stick.img")
	if err := vm.MakeStick(stick, vm.StickSpec{Kind: vm.StickFAT32, Label: "DAYSTICK", SizeMiB: 256}); err != nil {
		t.Fatal(err)
	}
	res := vm.RunGoTests(t, "./deploy/systemd", vm.Options{Cache: c, Dir: dir, Systemd: true,
		Sticks:  map[string]string{"stick": stick},
		Env:     map[string]string{envLabDir: dir, envDayPkg: "update.zip", envDayCert: "signer.pem"},
		Timeout: 10 * time.Minute}, "-test.run=^TestGuestDay$")
	t.Logf("day on %s: boot to init %s, systemd to the run's unit %s, wall %s", c.Arch, res.Boot.Round(10*time.Millisecond),
		res.Booted.Round(10*time.Millisecond), res.Wall.Round(10*time.Millisecond))
	if t.Failed() {
		return // the day stopped before the stick was staged
	}
	if out, err := vm.CheckFAT(stick); err != nil {
		t.Errorf("the stick after the eject: %v\n%s", err, out)
	}
	if ls, err := vm.StickDir(stick, "/"); err != nil || !bytes.Contains(bytes.ToUpper([]byte(ls)), []byte("UPDATE  ZIP")) && !bytes.Contains([]byte(ls), []byte("update.zip")) {
		t.Errorf("the stick holds no update.zip (%v):\n%s", err, ls)
	}
}

// updateZip is a recovery package of about size bytes: the update binary
// and a stored random payload.
func updateZip(t *testing.T, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("META-INF/com/google/android/update-binary")
	f.Write([]byte("#!/sbin/sh\necho lab\n"))
	f, err := w.CreateHeader(&zip.FileHeader{Name: "payload.bin", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{'d', 'a', 'y'})
	chunk := make([]byte, 1<<20)
	for n := 0; n < size; n += len(chunk) {
		r.Read(chunk)
		f.Write(chunk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
