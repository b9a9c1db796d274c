//go:build lab

package firmware

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/deploy/vm/guest"
	"github.com/boxagent/boxagent/internal/kernelhash"
)

// envSHAHelper names the file TestGuestBenchSHAHelper hashes; it is set
// only when TestGuestBench runs the test binary again as a helper.
const envSHAHelper = "FW_SHA_HELPER"

// benchRounds is how many times TestGuestBench times the baseline and the
// staging (FW_BENCH_ROUNDS overrides); the report gives each and the median.
const benchRounds = 3

// benchPartMiB is how much of the package the separate hashing
// measurements hash: enough for a stable rate, short enough to try several
// implementations in one boot.
const benchPartMiB = 64

// TestGuestBench stages a 256 MiB package and, on the same stick in the
// same boot, times cp + sync + sha256sum of the same file (page cache
// dropped before the read), for docs/BENCHMARKS.md. Before that it
// measures the parts separately: Go's SHA-256 under each of the CPU
// features it can use (GODEBUG, in a helper process: never in the agent),
// sha256sum on the same bytes in RAM, and the cold read of the staged file
// from the stick with dd.
func TestGuestBench(t *testing.T) {
	if os.Getenv(envBench) != "1" {
		t.Skip("FW_BENCH is not 1")
	}
	g := newGuestLab(t)
	a := g.importPkg(t, labBig)
	src := filepath.Join(g.store.Dir(), a.SHA256)
	mib := float64(a.Size) / (1 << 20)
	rounds := benchRounds
	if n, err := strconv.Atoi(os.Getenv("FW_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	report := fmt.Sprintf("package %.1f MiB (signapk, RSA-2048/SHA-256) onto a 640 MiB FAT32 image-backed stick, virtual board (TCG, 2 vCPUs), %d rounds\n", mib, rounds)
	report += hashParts(t, src)

	plug := guest.PlugStick(t, "bench")
	st := g.see(t, plug.Disk)
	dir := filepath.Join(t.TempDir(), "mnt")
	dst := filepath.Join(dir, "update.zip")
	var base, stage []float64
	for round := 1; round <= rounds; round++ {
		// The baseline, on its own mount of the stick; the staging's
		// update.zip of the round before is removed first.
		if err := (DirectMounter{}).Mount(context.Background(), MountRequest{Source: plug.Partitions[0], Target: dir, FSType: "vfat"}); err != nil {
			t.Fatal(err)
		}
		os.Remove(dst)
		benchSh(t, "sync")
		tcp := benchSh(t, "cp", src, dst)
		tsync := benchSh(t, "sync")
		tdrop := benchSh(t, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
		tsum := benchSh(t, "sha256sum", dst)
		if round == 1 {
			// The cold read alone, as the verification's reads and as
			// sha256sum's: what no hashing can go below.
			for _, bs := range []string{"32K", "256K", "1M"} {
				benchSh(t, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
				td := benchSh(t, "dd", "if="+dst, "of=/dev/null", "bs="+bs)
				report += fmt.Sprintf("cold read of update.zip from the stick, dd bs=%s: %.2fs (%.1f MiB/s)\n", bs, td.Seconds(), mib/td.Seconds())
			}
			// The read-back as it was: read 256 KiB, hash it, read the
			// next, in one goroutine (the sum of both times).
			benchSh(t, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
			ts := serialHash(t, dst)
			report += fmt.Sprintf("cold read + Go SHA-256 in one goroutine, 256 KiB reads (the read-back before): %.2fs (%.1f MiB/s)\n", ts.Seconds(), mib/ts.Seconds())
			ra, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(plug.Disk), "queue/read_ahead_kb"))
			ms, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(plug.Disk), "queue/max_sectors_kb"))
			report += fmt.Sprintf("stick queue: read_ahead_kb %s, max_sectors_kb %s\n", strings.TrimSpace(string(ra)), strings.TrimSpace(string(ms)))
		}
		os.Remove(dst)
		benchSh(t, "sync")
		if err := (DirectMounter{}).Unmount(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		b := tcp + tsync + tsum
		base = append(base, b.Seconds())
		report += fmt.Sprintf("round %d baseline: cp %.2fs + sync %.2fs + sha256sum (cold, after drop_caches %.2fs) %.2fs = %.2fs (%.1f MiB/s)\n",
			round, tcp.Seconds(), tsync.Seconds(), tdrop.Seconds(), tsum.Seconds(), b.Seconds(), mib/b.Seconds())

		benchSh(t, "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches")
		cached := 0
		g.stager.written = func(path string, off, end int64) { cached += cachedPagesIn(t, path, off, end) }
		start := time.Now()
		// The first verify progress comes when the write is over: how
		// much of the read-back was done beside the write.
		atWriteEnd := int64(-1)
		res, err := g.stager.Stage(context.Background(), a.SHA256, st, "", g.target, func(p StageProgress) {
			if p.Phase == "verify" && atWriteEnd < 0 {
				atWriteEnd = p.Done
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		ts := time.Since(start)
		stage = append(stage, ts.Seconds())
		report += fmt.Sprintf("round %d boxagent stage: %.2fs (%.1f MiB/s): write+fsync %.2fs, verify after the write %.2fs (%.0f of %.0f MiB read back and hashed beside the write), rest %.2fs; ratio to baseline %.2f; pages of %s cached when their region was read back: %d\n",
			round, ts.Seconds(), mib/ts.Seconds(), res.WriteSeconds, res.VerifySeconds, float64(atWriteEnd)/(1<<20), mib,
			ts.Seconds()-res.WriteSeconds-res.VerifySeconds, ts.Seconds()/b.Seconds(), TempName, cached)
		if _, err := g.stager.Eject(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	mb, ms := median(base), median(stage)
	report += fmt.Sprintf("median: baseline %.2fs, stage %.2fs, ratio %.2f\n", mb, ms, ms/mb)
	plug.Unplug(t)
	t.Log(report)
	os.WriteFile(filepath.Join(os.Getenv(envLabDir), labBenchOut), []byte(report), 0o644)
}

// hashParts times SHA-256 over the first benchPartMiB of src (in RAM):
// Go's, in a helper process per GODEBUG setting, and sha256sum's.
func hashParts(t *testing.T, src string) string {
	t.Helper()
	part := filepath.Join(t.TempDir(), "part")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(out, in, benchPartMiB<<20); err != nil {
		t.Fatal(err)
	}
	out.Close()
	var fs unix.Statfs_t
	unix.Statfs(part, &fs)
	report := fmt.Sprintf("hashing %d MiB in RAM (filesystem magic %#x; tmpfs is 0x1021994):\n", benchPartMiB, fs.Type)
	for _, godebug := range []string{"", "cpu.sha=off", "cpu.avx2=off", "cpu.avx2=off,cpu.avx=off"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGuestBenchSHAHelper$", "-test.v")
		cmd.Env = append(os.Environ(), envSHAHelper+"="+part, "GODEBUG="+godebug)
		start := time.Now()
		b, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("helper (GODEBUG=%s): %v\n%s", godebug, err, b)
		}
		var rate, kernel string
		for l := range strings.Lines(string(b)) {
			if r, ok := strings.CutPrefix(strings.TrimSpace(l), "sha256 rate "); ok {
				rate = r
			}
			if r, ok := strings.CutPrefix(strings.TrimSpace(l), "kernelhash rate "); ok {
				kernel = r
			}
		}
		report += fmt.Sprintf("  Go crypto/sha256, GODEBUG=%q: %s (process %.2fs)\n", godebug, rate, took.Seconds())
		if godebug == "" {
			report += fmt.Sprintf("  internal/kernelhash (what the agent uses): %s\n", kernel)
		}
	}
	td := benchSh(t, "sha256sum", part)
	report += fmt.Sprintf("  sha256sum: %.2fs (%.1f MiB/s, process start included)\n", td.Seconds(), benchPartMiB/td.Seconds())
	return report
}

// TestGuestBenchSHAHelper is TestGuestBench's helper process: it hashes
// the file FW_SHA_HELPER names (in RAM, read first) and prints the rate.
func TestGuestBenchSHAHelper(t *testing.T) {
	path := os.Getenv(envSHAHelper)
	if path == "" {
		t.Skip("a helper of TestGuestBench")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rate := func(h hash.Hash) string {
		start := time.Now()
		for off := 0; off < len(b); off += readBlock {
			h.Write(b[off:min(off+readBlock, len(b))])
		}
		h.Sum(nil)
		took := time.Since(start)
		return fmt.Sprintf("%.1f MiB/s (%.2fs)", float64(len(b))/(1<<20)/took.Seconds(), took.Seconds())
	}
	fmt.Printf("sha256 rate %s\n", rate(sha256.New()))
	k := kernelhash.New(crypto.SHA256)
	defer k.Close()
	name, why := kernelhash.Backend(crypto.SHA256)
	fmt.Printf("kernelhash rate %s, %s %v\n", rate(k), name, why)
}

// cachedPagesIn counts the pages of [off, end) of the file in the page
// cache (mincore); off is page-aligned.
func cachedPagesIn(t *testing.T, path string, off, end int64) int {
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return -1
	}
	defer f.Close()
	if end <= off {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), off, int(end-off), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Error(err)
		return -1
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Error(errno)
		return -1
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// serialHash reads path in 256 KiB blocks and hashes each before reading
// the next.
func serialHash(t *testing.T, path string) time.Duration {
	t.Helper()
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, passBuf)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	h.Sum(nil)
	return time.Since(start)
}

func benchSh(t *testing.T, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return time.Since(start)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
