// Command boxagent-bench measures boxagent and writes docs/BENCHMARKS.md:
// binary sizes, daemon memory, start-up time, API latency and CLI
// round-trip beside a trivial process spawn, all in one run on one machine.
// Figures are measured, never asserted: tests do not time things.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
)

func main() {
	bin := flag.String("bin", "bin/boxagent", "the boxagent binary to measure")
	crossDir := flag.String("cross-dir", "bin", "folder with boxagent-linux-<arch> binaries")
	out := flag.String("out", "docs/BENCHMARKS.md", "where to write the report")
	extra := flag.String("append", "", "a Markdown file whose contents are appended (e.g. the lab's figures)")
	budget := flag.Int64("size-budget", 16<<20, "largest stripped binary allowed, in bytes")
	flag.Parse()
	r := &report{budget: *budget}
	if err := run(r, *bin, *crossDir); err != nil {
		log.Fatal(err)
	}
	if *extra != "" {
		if data, err := os.ReadFile(*extra); err == nil {
			r.add("%s", string(data))
		}
	}
	if err := os.WriteFile(*out, []byte(r.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Print(r.String())
	if len(r.overBudget) > 0 {
		log.Fatalf("over the size budget of %d bytes: %s", r.budget, strings.Join(r.overBudget, ", "))
	}
}

type report struct {
	b          strings.Builder
	budget     int64
	overBudget []string
}

func (r *report) add(format string, a ...any) { fmt.Fprintf(&r.b, format+"\n", a...) }
func (r *report) String() string              { return r.b.String() }

func run(r *report, bin, crossDir string) error {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	r.add("# Benchmarks")
	r.add("")
	r.add("Written by `make bench` (cmd/boxagent-bench) on %s, %s, %d CPUs, %s, %s.",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), cpuModel(), runtime.Version())
	r.add("Every figure below was measured in that one run; peers are measured beside it for scale.")
	r.add("")
	sizes(r, crossDir)

	root, err := os.MkdirTemp("", "boxagent-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	d, err := startDaemon(abs, root)
	if err != nil {
		return err
	}
	defer d.stop()
	r.add("## Daemon")
	r.add("")
	r.add("| measure | value |")
	r.add("| --- | --- |")
	r.add("| start to READY=1 (sd_notify), median of 5 | %s |", d.readyMedian)
	r.add("| RSS after start | %s |", kib(rss(d.cmd.Process.Pid)))
	c := client.New(d.socket, "cli")
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if _, err := c.Status(ctx); err != nil {
			return err
		}
	}
	r.add("| RSS after 1000 API calls | %s |", kib(rss(d.cmd.Process.Pid)))
	r.add("")
	r.add("## API latency (GET /api/v1/status over the unix socket)")
	r.add("")
	r.add("| concurrent clients | calls | p50 | p99 | calls/s |")
	r.add("| --- | --- | --- | --- | --- |")
	for _, n := range []int{1, 50} {
		p50, p99, rate, calls, err := latency(d.socket, n, 4000)
		if err != nil {
			return err
		}
		r.add("| %d | %d | %s | %s | %.0f |", n, calls, p50, p99, rate)
	}
	r.add("")
	r.add("## CLI round trip (fork to exit), median of 30")
	r.add("")
	r.add("| command | median |")
	r.add("| --- | --- |")
	r.add("| `boxagent status --socket …` | %s |", spawn(30, abs, "status", "--socket", d.socket))
	r.add("| `boxagent version` (no daemon) | %s |", spawn(30, abs, "version"))
	r.add("| `/bin/true` (trivial spawn, for scale) | %s |", spawn(30, "/bin/true"))
	if p, err := exec.LookPath("systemctl"); err == nil {
		r.add("| `systemctl --version` (peer) | %s |", spawn(30, p, "--version"))
	}
	if p, err := exec.LookPath("busctl"); err == nil {
		r.add("| `busctl --version` (peer) | %s |", spawn(30, p, "--version"))
	}
	r.add("")
	controlPage(r, c, root) // page.go
	return nil
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func sizes(r *report, dir string) {
	r.add("## Binary size (stripped, static, CGO_ENABLED=0)")
	r.add("")
	r.add("Budget: %.1f MiB per binary; `make bench` fails above it.", float64(r.budget)/(1<<20))
	r.add("")
	r.add("| target | bytes | MiB |")
	r.add("| --- | --- | --- |")
	matches, _ := filepath.Glob(filepath.Join(dir, "boxagent-linux-*"))
	sort.Strings(matches)
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			continue
		}
		r.add("| %s | %d | %.2f |", strings.TrimPrefix(filepath.Base(m), "boxagent-"), fi.Size(), float64(fi.Size())/(1<<20))
		if fi.Size() > r.budget {
			r.overBudget = append(r.overBudget, filepath.Base(m))
		}
	}
	r.add("")
}

type daemon struct {
	cmd         *exec.Cmd
	socket      string
	readyMedian time.Duration
	notify      *net.UnixConn
}

// startDaemon starts the daemon five times to time READY=1 and leaves the
// last one running.
func startDaemon(bin, root string) (*daemon, error) {
	d := &daemon{socket: filepath.Join(root, "run/boxagent/api.sock")}
	npath := filepath.Join(root, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: npath, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	d.notify = nc
	var times []time.Duration
	for i := 0; i < 5; i++ {
		if d.cmd != nil {
			d.stop()
		}
		d.cmd = exec.Command(bin, "serve", "--root", root, "--listen", "127.0.0.1:0", "--log-level", "warn")
		d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+npath)
		d.cmd.Stderr = os.Stderr
		start := time.Now()
		if err := d.cmd.Start(); err != nil {
			return nil, err
		}
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("no READY=1: %w", err)
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				break
			}
		}
		times = append(times, time.Since(start))
	}
	d.readyMedian = median(times)
	return d, nil
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	d.cmd.Wait()
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2].Round(10 * time.Microsecond)
}

func rss(pid int) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func kib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/1024) }

// latency runs total status calls spread over n concurrent clients.
func latency(socket string, n, total int) (p50, p99 time.Duration, rate float64, calls int, err error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(socket, "cli")
			var mine []time.Duration
			for i := 0; i < total/n; i++ {
				t := time.Now()
				if _, err := c.Status(context.Background()); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, 0, 0, 0, firstErr
	}
	elapsed := time.Since(start)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p := func(q float64) time.Duration { return all[int(q*float64(len(all)-1))].Round(time.Microsecond) }
	return p(0.50), p(0.99), float64(len(all)) / elapsed.Seconds(), len(all), nil
}

// spawn times a command from fork to exit, median of n runs.
func spawn(n int, name string, args ...string) time.Duration {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		t := time.Now()
		cmd := exec.Command(name, args...)
		if err := cmd.Run(); err != nil {
			return 0
		}
		ds = append(ds, time.Since(t))
	}
	return median(ds)
}
