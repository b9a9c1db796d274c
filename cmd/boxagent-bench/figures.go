package main

import (
	"cmp"
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func sizes(r *report, o options) error {
	r.add("## Binary size (stripped, static, CGO_ENABLED=0)")
	r.add("")
	r.add("Goal: the linux/arm binary ≤ %d B. `make test-size` checks it against the budget in the Makefile (a check: size is deterministic).", o.sizeGoal)
	r.add("")
	r.add("| target | bytes | MiB | of the goal |")
	r.add("| --- | --- | --- | --- |")
	matches, _ := filepath.Glob(filepath.Join(o.crossDir, "boxagent-linux-*"))
	slices.Sort(matches)
	if len(matches) == 0 {
		return fmt.Errorf("no boxagent-linux-* in %s (make cross)", o.crossDir)
	}
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			return err
		}
		target := strings.TrimPrefix(filepath.Base(m), "boxagent-")
		r.add("| %s | %d | %.2f | %.0f %% |", target, fi.Size(), float64(fi.Size())/(1<<20), 100*float64(fi.Size())/float64(o.sizeGoal))
		if target == "linux-arm" {
			r.check("linux/arm binary", fmt.Sprintf("≤ %d B", o.sizeGoal), fmt.Sprintf("%d B", fi.Size()), fi.Size() <= o.sizeGoal)
		}
	}
	r.add("")
	top, err := topPackages(15)
	if err != nil {
		return err
	}
	r.add("The largest packages of the linux/arm binary (symbol sizes of an unstripped build, code and data in the file; the rest is the runtime's tables):")
	r.add("")
	r.add("| package | bytes |")
	r.add("| --- | --- |")
	for _, p := range top {
		r.add("| %s | %d |", p.name, p.size)
	}
	r.add("")
	return nil
}

type pkgSize struct {
	name string
	size int64
}

// topPackages builds boxagent for linux/arm unstripped and sums its
// symbols' sizes by package (a module's packages as one, boxagent's own by
// package). BSS is left out: it takes no room in the file.
func topPackages(n int) ([]pkgSize, error) {
	tmp, err := os.MkdirTemp("", "boxagent-bench-nm")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	exe := filepath.Join(tmp, "boxagent")
	build := exec.Command("go", "build", "-trimpath", "-tags", "nethttpomithttp2", "-o", exe, "./cmd/boxagent")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build for the size table: %v\n%s", err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, err
	}
	sums := map[string]int64{}
	for _, sym := range syms {
		// Only what takes room in the file: BSS (drbg's 32 MiB buffer
		// among it) is made at run time.
		if sym.Section >= elf.SectionIndex(len(f.Sections)) || sym.Section == elf.SHN_UNDEF ||
			f.Sections[sym.Section].Type == elf.SHT_NOBITS || sym.Size == 0 {
			continue
		}
		sums[packageOf(sym.Name)] += int64(sym.Size)
	}
	var ps []pkgSize
	for k, v := range sums {
		ps = append(ps, pkgSize{k, v})
	}
	slices.SortFunc(ps, func(a, b pkgSize) int { return cmp.Compare(b.size, a.size) })
	return ps[:min(n, len(ps))], nil
}

// packageOf is the package a symbol belongs to, as the table groups it.
func packageOf(sym string) string {
	sym = strings.TrimLeft(sym, "(*")
	if i := strings.Index(sym, ":"); i > 0 && !strings.Contains(sym[:i], "/") && !strings.Contains(sym[:i], ".") {
		return sym[:i+1] // go:, type:, runtime's tables
	}
	slash := strings.LastIndex(sym, "/")
	dot := strings.Index(sym[slash+1:], ".")
	pkg := sym
	if dot >= 0 {
		pkg = sym[:slash+1+dot]
	}
	parts := strings.Split(pkg, "/")
	switch {
	case strings.HasPrefix(pkg, "github.com/boxagent/boxagent/"):
		return strings.Join(parts[:min(len(parts), 5)], "/")
	case strings.Contains(parts[0], "."): // a module: its path
		return strings.Join(parts[:min(len(parts), 3)], "/")
	}
	return pkg
}

// startup times exec → READY=1 of the agent (a warm start: its state is
// there) beside the floor's and the -before binary's.
func startup(r *report, o options, agent, floor, before *server) error {
	times := map[*server][]time.Duration{}
	one := func(s *server) func() error {
		return func() error {
			d, err := s.start()
			if err != nil {
				return err
			}
			times[s] = append(times[s], d)
			s.stop()
			return nil
		}
	}
	var fns []func() error
	for _, s := range withBefore(before, agent, floor) {
		fns = append(fns, one(s))
	}
	if err := interleave(o.rounds, fns...); err != nil {
		return err
	}
	a, f, b := spreadOf(durations(times[agent])), spreadOf(durations(times[floor])), spreadOf(durations(times[before]))
	r.add("## Start-up, exec → READY=1 (a warm start: the agent's state is there)")
	r.add("")
	r.row([]string{"boxagent", "floor", "ratio"}, "boxagent before", "after ÷ before")
	r.row([]string{"---", "---", "---"}, "---", "---")
	r.row([]string{a.dur(), f.dur(), ratio(a.med, f.med)}, b.dur(), ratio(a.med, b.med))
	r.add("")
	got := roundDur(time.Duration(a.med)).String()
	r.check("exec → READY=1 (goal on the armhf board; here on this machine)", "≤ 100ms", got, a.med <= float64(100*time.Millisecond))
	return nil
}

// defaultIdleSettle is how long after the latest start of the watched
// processes the idle watch begins: start-up and what it leaves are not
// idling. The agent's last start-up work is its fifth attempt to reach
// the sound server (the back-off's 1, 2, 5 and 10 s: 18 s and the
// attempt's own time after the start) and the 10 s timeout that attempt
// arms; with a 20 s settle the watch began on that tail, ~100 context
// switches that fell in or out of the window by a second either way. The
// garbage start-up leaves is collected by the runtime's first forced
// collection (2 minutes after the start-up one, give or take sysmon's
// 60 s sleep: 120–180 s in) and returned to the kernel by the background
// scavenger when sysmon next wakes (60 s later): ~100 context switches
// once, where a later forced collection costs ~10–20.
const defaultIdleSettle = 4*time.Minute + 10*time.Second

// idleWindows is how many windows the watch is cut into: each gives a
// rate, and their spread shows what is periodic (the runtime's forced
// collection every 2 minutes) beside what is steady.
const idleWindows = 4

// idle watches the agent, the agent with its fleet link on, the floor and
// the -before binary for o.idle with nothing asked of them and no
// connection open to them: memory every few seconds, and their wakeups
// (every timer, retry or poll is one) in idleWindows windows.
func idle(r *report, o options, agent, fleetOn, floor, before *server) error {
	type watch struct {
		s       *server
		rss     []float64
		windows []float64 // wakeups per minute in each window
		total   int64
	}
	var ws []*watch
	for _, s := range withBefore(before, agent, fleetOn, floor) {
		ws = append(ws, &watch{s: s})
	}
	var last time.Time
	for _, w := range ws {
		// The bench's own keep-alive connections would be closed by the
		// agent's idle timeout (60 s) inside the watch, and the floor
		// has none: nobody is connected to an idle box.
		w.s.http.CloseIdleConnections()
		if w.s.started.After(last) {
			last = w.s.started
		}
	}
	time.Sleep(time.Until(last.Add(o.idleSettle)))
	const rssPerWindow = 3
	sw := make([]int64, len(ws))
	for i, w := range ws {
		var err error
		if sw[i], err = wakeups(w.s.pid()); err != nil {
			return err
		}
	}
	window := o.idle / idleWindows
	for range idleWindows {
		t0 := time.Now()
		for range rssPerWindow {
			time.Sleep(window / rssPerWindow)
			for _, w := range ws {
				kb, err := statusField(fmt.Sprintf("/proc/%d/status", w.s.pid()), "VmRSS")
				if err != nil {
					return err
				}
				w.rss = append(w.rss, float64(kb))
			}
		}
		elapsed := time.Since(t0)
		for i, w := range ws {
			n, err := wakeups(w.s.pid())
			if err != nil {
				return err
			}
			w.windows = append(w.windows, float64(n-sw[i])/elapsed.Minutes())
			w.total += n - sw[i]
			sw[i] = n
		}
	}
	perMinute := func(w *watch) float64 { return float64(w.total) / (time.Duration(idleWindows) * window).Minutes() }
	wake := func(w *watch) string {
		s := spreadOf(w.windows)
		return fmt.Sprintf("%.1f (%.0f / %.0f / %.0f)", perMinute(w), s.min, s.med, s.max)
	}
	a, fl, f := spreadOf(ws[0].rss), spreadOf(ws[1].rss), spreadOf(ws[2].rss)
	aw, flw, fw := perMinute(ws[0]), perMinute(ws[1]), perMinute(ws[2])
	bw := &watch{} // the -before binary's, empty without one
	if before != nil {
		bw = ws[3]
	}
	b := spreadOf(bw.rss)
	r.add("## Idle, %s watched (no Bluetooth, PulseAudio or uplinks: the domains find their daemons absent)", o.idle)
	r.add("")
	r.add("The watch begins %s after the latest start of the %s (start-up's connect retries are over, and so is the first forced collection of the garbage start-up left) with no connection open to any of them, and is cut into %d windows of %s, watched side by side. The fleet link's column is the same agent with `[fleet]` on, connected to Debian's mosquitto on loopback (TLS, client certificate, keepalive 60 s).", o.idleSettle, map[int]string{3: "three", 4: "four"}[len(ws)], idleWindows, window)
	r.add("")
	r.row([]string{"figure", "boxagent", "boxagent, fleet link on", "floor", "ratio (boxagent ÷ floor)"}, "boxagent before", "boxagent ÷ before")
	r.row([]string{"---", "---", "---", "---", "---"}, "---", "---")
	r.row([]string{fmt.Sprintf("RSS, %d samples", len(ws[0].rss)), a.mib(), fl.mib(), f.mib(), ratio(a.med, f.med)}, b.mib(), ratio(a.med, b.med))
	r.row([]string{"wakeups (voluntary context switches of all threads) per minute over the watch (min / median / max of the windows)", wake(ws[0]), wake(ws[1]), wake(ws[2]), ratio(aw, fw)},
		wake(bw), ratio(aw, perMinute(bw)))
	r.add("")
	r.add("What an idle Go process wakes for without any timer of its own: sysmon's deep sleep ends every 60 s; a process that has collected once is forced to collect again every 2 minutes (the floor collects once after READY=1 so that it has this too: the agent's start-up heap passes the first 4 MB goal, the bare floor's never does, and a process never collected is never forced); after a collection the background scavenger returns freed pages to the kernel in 64 KiB steps, each a wakeup. The windows' spread is that: a window with a forced collection, a window without. Not in these figures: under systemd the unit's watchdog (deploy/systemd/boxagent.service, `WatchdogSec=30s`) has the agent send WATCHDOG=1 at half the interval, a timer of ours by contract: 4 pings a minute, 5–7 wakeups each on this machine (~24 a minute; a longer WatchdogSec is the lever).")
	r.add("")
	r.check("idle RSS (amd64)", "≤ 12.0 MiB", fmt.Sprintf("%.1f MiB", a.med/1024), a.med <= 12*1024)
	// Polling wakes a process in every window; the runtime's forced
	// collection in every other one, at a cost that swings with the
	// machine's load (its stop-the-world waits in 100 µs sleeps for a
	// thread the kernel has not run: 10 to ~500 wakeups in one window on
	// this machine). The goals compare the quietest window of each.
	aq, flq, fq := spreadOf(ws[0].windows).min, spreadOf(ws[1].windows).min, spreadOf(ws[2].windows).min
	r.check("idle wakeups: none from polling (quietest window)", "≤ 1.5× the floor's",
		fmt.Sprintf("%.0f/min, floor %.0f/min (over the watch %.1f and %.1f)", aq, fq, aw, fw), aq <= 1.5*fq+1)
	r.check("the fleet link's memory", "≤ 1 MiB more", fmt.Sprintf("%+.1f MiB", (fl.med-a.med)/1024), fl.med-a.med <= 1024)
	// Keepalive 60 s: one ping a minute, and its answer.
	r.check("the fleet link's wakeups (quietest window)", "none beyond the keepalive (≤ 2/min more)",
		fmt.Sprintf("%+.0f/min (over the watch %+.1f)", flq-aq, flw-aw), flq-aq <= 2)
	return nil
}

// latency loads the agent, the floor and the -before binary with GET
// /api/v1/status, one client and fifty, interleaved in rounds; then their
// memory after the load.
func latency(r *report, o options, agent, floor, before *server) error {
	r.add("## GET /api/v1/status over the unix socket")
	r.add("")
	r.add("%d calls per client count and server, in %d interleaved rounds. CPU per call is the server's time on a CPU (all threads, schedstat) over a round divided by its calls.", o.calls, o.rounds)
	r.add("")
	r.row([]string{"clients", "figure", "boxagent", "floor", "ratio"}, "boxagent before", "after ÷ before")
	r.row([]string{"---", "---", "---", "---", "---"}, "---", "---")
	for _, n := range []int{1, 50} {
		lat := map[*server][]time.Duration{}
		cpu := map[*server][]time.Duration{}
		one := func(s *server) func() error {
			return func() error {
				l, c, err := s.load(n, o.calls/o.rounds)
				lat[s] = append(lat[s], l...)
				cpu[s] = append(cpu[s], c)
				return err
			}
		}
		var fns []func() error
		for _, s := range withBefore(before, agent, floor) {
			fns = append(fns, one(s))
		}
		if err := interleave(o.rounds, fns...); err != nil {
			return err
		}
		pct := func(s *server, q float64) float64 {
			xs := durations(lat[s])
			if len(xs) == 0 {
				return 0 // no -before binary
			}
			slices.Sort(xs)
			return xs[int(q*float64(len(xs)-1))]
		}
		for _, q := range []float64{0.5, 0.99} {
			a, f, b := pct(agent, q), pct(floor, q), pct(before, q)
			r.row([]string{fmt.Sprint(n), fmt.Sprintf("p%.0f latency", q*100), roundDur(time.Duration(a)).String(), roundDur(time.Duration(f)).String(), ratio(a, f)},
				roundDur(time.Duration(b)).String(), ratio(a, b))
			if n == 50 && q == 0.99 {
				r.check("status p99, 50 clients", "≤ 1.5× the floor", ratio(a, f), a <= 1.5*f)
			}
		}
		a, f, b := spreadOf(durations(cpu[agent])), spreadOf(durations(cpu[floor])), spreadOf(durations(cpu[before]))
		r.row([]string{fmt.Sprint(n), "CPU per call", a.dur(), f.dur(), ratio(a.med, f.med)}, b.dur(), ratio(a.med, b.med))
		if n == 1 {
			r.check("status CPU per call", "≤ 1.3× the floor", ratio(a.med, f.med), a.med <= 1.3*f.med)
		}
	}
	r.add("")
	var plateau spread
	r.row([]string{"after the load", "boxagent", "floor", "ratio"}, "boxagent before", "after ÷ before")
	r.row([]string{"---", "---", "---", "---"}, "---", "---")
	var rows [3]spread
	for i, s := range withBefore(before, agent, floor) {
		xs, err := rssSamples(s.pid(), 5, time.Second)
		if err != nil {
			return err
		}
		rows[i] = spreadOf(xs)
	}
	plateau = rows[0]
	r.row([]string{"RSS, 5 samples", rows[0].mib(), rows[1].mib(), ratio(rows[0].med, rows[1].med)}, rows[2].mib(), ratio(rows[0].med, rows[2].med))
	r.add("")
	r.check("RSS after the load", "≤ 16.0 MiB", fmt.Sprintf("%.1f MiB", plateau.med/1024), plateau.med <= 16*1024)
	return nil
}

// cli times commands from fork to exit, interleaved: the agent's CLI
// beside systemd's (peers a box has) and a bare spawn.
func cli(r *report, bin, socket string) error {
	type cmdline struct {
		label string
		argv  []string
	}
	cmds := []cmdline{
		{"`boxagent status --socket …`", []string{bin, "status", "--socket", socket}},
		{"`boxagent version` (no agent asked)", []string{bin, "version"}},
		{"`/bin/true` (a bare spawn)", []string{"/bin/true"}},
	}
	for _, p := range []string{"systemctl", "busctl"} {
		if path, err := exec.LookPath(p); err == nil {
			cmds = append(cmds, cmdline{"`" + p + " --version` (peer)", []string{path, "--version"}})
		}
	}
	times := map[int][]time.Duration{}
	var fns []func() error
	for i, c := range cmds {
		fns = append(fns, func() error {
			t := time.Now()
			if out, err := exec.Command(c.argv[0], c.argv[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v\n%s", c.label, err, out)
			}
			times[i] = append(times[i], time.Since(t))
			return nil
		})
	}
	const rounds = 30
	if err := interleave(rounds, fns...); err != nil {
		return err
	}
	r.add("## CLI round trip, fork to exit (%d interleaved rounds)", rounds)
	r.add("")
	r.add("| command | min / median / max | ÷ `/bin/true` |")
	r.add("| --- | --- | --- |")
	base := spreadOf(durations(times[2]))
	for _, i := range slices.Sorted(maps.Keys(times)) {
		s := spreadOf(durations(times[i]))
		r.add("| %s | %s | %s |", cmds[i].label, s.dur(), ratio(s.med, base.med))
	}
	r.add("")
	return nil
}

func goals(r *report) {
	r.add("## Goals (issue \"Lean and event-driven\")")
	r.add("")
	r.add("| goal | want | measured | |")
	r.add("| --- | --- | --- | --- |")
	for _, g := range r.goals {
		mark := "met"
		if !g.met {
			mark = "**missed**"
		}
		r.add("| %s | %s | %s | %s |", g.what, g.want, g.got, mark)
	}
	r.add("")
}
