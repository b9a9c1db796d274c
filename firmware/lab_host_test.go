//go:build lab

package firmware

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// Knobs the host passes to the guest tests (TestGuest*, lab_guest_test.go).
const (
	envLabDir = "FW_LAB_DIR" // the results share: packages and the certificate
	envBench  = "FW_BENCH"   // "1": run the 256 MiB staging bench
)

// Files the host puts in the results share for the guest.
const (
	labCert     = "release.x509.pem"
	labSmall    = "small.zip"  // a signed 2 MiB package
	labMedium   = "medium.zip" // a signed 24 MiB package (unplug and SIGKILL mid-copy)
	labBig      = "big.zip"    // a signed 256 MiB package (bench)
	labBenchOut = "bench.txt"
)

// kernelHashedTests are unit tests the guest runs too: on the host Go
// computes their sums (its kernel has no AF_ALG), in the board the
// kernel's SHA-256 and SHA-1 do (internal/kernelhash), with SHA-1 signers,
// flipped bytes and truncations among them.
const kernelHashedTests = `TestVerifySignApk$|TestVerifyDigestAndDetached$|TestVerifyFile$|TestStoreImport$|TestStageSignApk$|TestStageCatchesFlippedByte$`

// TestLab boots the virtual board once and runs the guest tests there:
// sticks hot-plugged over QMP and one present at boot; then it checks the
// images on the host with fsck.fat -n and mtools.
func TestLab(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side of the lab tests")
	}
	c := vm.RequireLab(t)
	needTool(t, "openssl")
	needTool(t, "mkfs.exfat")
	dir := t.TempDir()
	if os.Getenv("LAB_KEEP") != "" {
		d, err := os.MkdirTemp("", "fw-lab-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	start := time.Now()
	k := key(t, "rsa2048")
	copyFile(t, k.certPath, filepath.Join(dir, labCert))
	pkgs := map[string]int64{labSmall: 2 << 20, labMedium: 24 << 20}
	// The 256 MiB bench takes minutes under TCG: FW_LAB_BENCH=1 asks for it.
	bench := os.Getenv("FW_LAB_BENCH") == "1"
	if bench {
		pkgs[labBig] = 256 << 20
	}
	sums := map[string]string{}
	for name, size := range pkgs {
		data := signWholeFile(t, payloadZip(t, size), k, "sha256", true)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[name] = shaHex(data)
	}
	sticks := map[string]string{}
	for name, spec := range map[string]vm.StickSpec{
		"fat32":  {Kind: vm.StickFAT32},
		"unplug": {Kind: vm.StickFAT32, SizeMiB: 128},
		"kill":   {Kind: vm.StickFAT32, SizeMiB: 128},
		"full":   {Kind: vm.StickFull},
		"ro":     {Kind: vm.StickFAT32},
		"exfat":  {Kind: vm.StickRaw},
		"boot":   {Kind: vm.StickFAT32, Label: "BOOTSTICK"},
		"bench":  {Kind: vm.StickFAT32, SizeMiB: 640},
		"agent":  {Kind: vm.StickFAT32},
		"web":    {Kind: vm.StickFAT32}, // TestGuestBrowserStage (lab_browser_test.go)
		"fleet":  {Kind: vm.StickFAT32}, // TestGuestFleetStage (lab_fleet_test.go)
	} {
		if name == "bench" && !bench {
			continue
		}
		sticks[name] = filepath.Join(t.TempDir(), name+".img")
		if err := vm.MakeStick(sticks[name], spec); err != nil {
			t.Fatal(err)
		}
	}
	makeExFAT(t, sticks["exfat"])
	before := map[string]string{}
	for _, n := range []string{"ro", "exfat"} {
		before[n] = fileSHA(t, sticks[n])
	}
	boot := sticks["boot"]
	delete(sticks, "boot") // plugged at boot, not on request
	t.Logf("fixtures in %s", time.Since(start).Round(time.Millisecond))

	// The agent itself, for TestGuestAgent: boxagent serve and its CLI.
	if err := vm.BuildBoxagent(c, filepath.Join(dir, "boxagent")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envLabDir: dir, "FW_BOXAGENT": filepath.Join(dir, "boxagent")}
	for name, sum := range sums {
		env["FW_SHA_"+strings.ToUpper(strings.TrimSuffix(name, ".zip"))] = sum
	}
	if bench {
		env[envBench] = "1"
		env["FW_BENCH_ROUNDS"] = os.Getenv("FW_BENCH_ROUNDS") // TestGuestBench's repeats; empty: its default
	}
	timeout := 12 * time.Minute // Chromium under TCG takes a few of them (TestGuestBrowserStage)
	if bench {
		timeout = 20 * time.Minute // three rounds of cp + sync + sha256sum and staging, 256 MiB
	}
	res := vm.RunGoTests(t, "./firmware", vm.Options{
		Cache: c, Dir: dir, Sticks: sticks, Env: env, MemoryMB: 2048, Timeout: timeout,
		ExtraArgs: []string{
			"-drive", "if=none,id=bootstick,format=raw,file=" + boot,
			"-device", "usb-storage,bus=xhci.0,drive=bootstick,removable=true,serial=BOOTSTICK01",
		},
	}, "-test.run=^(TestGuest|"+kernelHashedTests+")")

	// The images, checked from outside, as a second machine would.
	for _, name := range []string{"fat32", "unplug", "kill", "agent", "web", "fleet"} {
		img := sticks[name]
		if out, err := vm.CheckFAT(img); err != nil {
			// A stick pulled while mounted keeps Linux's dirty flag: the
			// kernel never clears a flag it found at mount. That alone is
			// not damage.
			if name != "unplug" || !onlyDirty(out) {
				t.Errorf("stick %s: %v\n%s", name, err, out)
			} else {
				t.Logf("stick %s: fsck.fat -n finds only the dirty flag of the pull:\n%s", name, out)
			}
		}
		ls, err := vm.StickDir(img, "/")
		if err != nil {
			t.Errorf("mdir %s: %v", name, err)
			continue
		}
		if strings.Contains(strings.ToUpper(ls), "PRT") {
			t.Errorf("stick %s keeps the temporary copy:\n%s", name, ls)
		}
		want := sums[labSmall]
		if name == "unplug" || name == "kill" {
			want = sums[labMedium]
		}
		got, err := vm.StickRead(img, "/update.zip")
		if err != nil {
			t.Errorf("stick %s has no update.zip: %v\n%s", name, err, ls)
		} else if shaHex(got) != want {
			t.Errorf("stick %s: update.zip has sha256 %s, want %s", name, shaHex(got), want)
		}
	}
	for n, sum := range before {
		if fileSHA(t, sticks[n]) != sum {
			t.Errorf("the %s stick was written to", n)
		}
	}
	if ls, err := vm.StickDir(sticks["full"], "/"); err != nil || strings.Contains(strings.ToUpper(ls), "PRT") || strings.Contains(strings.ToUpper(ls), "UPDATE") {
		t.Errorf("full stick: %v\n%s", err, ls)
	}
	if b, err := os.ReadFile(filepath.Join(res.Dir, labBenchOut)); err == nil {
		t.Logf("bench:\n%s", b)
	}
	t.Logf("TestLab: %s in all", time.Since(start).Round(time.Millisecond))
}

// onlyDirty says whether fsck.fat's report holds nothing but the dirty
// flag (and the boot sector backup differing in that flag's byte).
func onlyDirty(out string) bool {
	ok := []string{"fsck.fat ", "There are differences between boot sector and its backup", "This is mostly harmless",
		"Differences: (offset:original/backup)", "65:01/00", "Not automatically fixing this", "Dirty bit is set",
		"Automatically removing dirty bit", "Leaving filesystem unchanged", "files, "}
	dirty := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		known := false
		for _, k := range ok {
			if strings.Contains(line, k) {
				known = true
			}
		}
		if !known {
			return false
		}
		dirty = dirty || strings.Contains(line, "Dirty bit is set")
	}
	return dirty
}

// payloadZip is a recovery package of about size bytes: the update binary
// and a stored (uncompressed) random payload, as real images are.
func payloadZip(t *testing.T, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.Grow(int(size) + 4096)
	w := zip.NewWriter(&buf)
	for _, e := range updateEntries() {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(e.data)
	}
	f, err := w.CreateHeader(&zip.FileHeader{Name: "payload.bin", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.NewChaCha8([32]byte{byte(size >> 20)})
	chunk := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(chunk)) {
		r.Read(chunk)
		f.Write(chunk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeExFAT puts an exFAT filesystem in the image's first partition and
// marks the partition 0x07, as a stick formatted on a PC.
func makeExFAT(t *testing.T, img string) {
	t.Helper()
	off, err := vm.PartitionOffset(img)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img)
	part := filepath.Join(t.TempDir(), "part.img")
	if err := os.WriteFile(part, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(part, fi.Size()-off)
	if out, err := exec.Command("mkfs.exfat", "-L", "EXFAT", part).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.exfat: %v: %s", err, out)
	}
	data, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(data, off)
	f.WriteAt([]byte{0x07}, 446+4)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
