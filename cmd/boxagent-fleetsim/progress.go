package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// progress tells on stderr where the run is: a line when a phase starts
// and ends and, while one runs, a line every few seconds with its count
// done of N, read from counters the run keeps anyway. Time, not 10 %
// steps, because the phase worth watching is the one that stalls: it
// takes no steps, and the lines say for how long it has not moved.
type progress struct {
	w     io.Writer
	quiet bool // only the lines of figures: each phase's end
	every time.Duration
	now   func() time.Time
	began time.Time
	// brokers, if set, says how the broker processes stand; it is added
	// to the periodic lines and to a stopped phase's.
	brokers func() string

	mu      sync.Mutex
	running []*phase
	stopTk  chan struct{} // closes the ticker's goroutine; nil when none runs
}

// phase is one step of the run being watched.
type phase struct {
	name  string
	began time.Time
	total int
	done  func() int    // how many of total are done
	more  func() string // what else to say while it runs, or nil
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, quiet: quiet, every: 5 * time.Second, now: time.Now, began: time.Now()}
}

// watchBrokers adds f's word on the brokers to the periodic lines.
func (p *progress) watchBrokers(f func() string) {
	p.mu.Lock()
	p.brokers = f
	p.mu.Unlock()
}

// begin starts watching a phase of total steps (0 for one without a
// count).
func (p *progress) begin(name string, total int, done func() int, more func() string) *phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := &phase{name: name, began: p.now(), total: total, done: done, more: more}
	p.running = append(p.running, ph)
	if !p.quiet {
		p.line(ph, "started")
	}
	if p.stopTk == nil && !p.quiet && p.every > 0 {
		p.stopTk = make(chan struct{})
		go p.ticker(p.stopTk)
	}
	return ph
}

// end says the phase's figures; the ticker stops with the last phase.
func (p *progress) end(ph *phase, figures string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remove(ph)
	p.line(ph, fmt.Sprintf("ended after %s: %s", roundDur(p.now().Sub(ph.began)), figures))
}

// stop ends every running phase with what it had done and why it
// stopped (a -timeout, a signal), whether quiet or not: these are the
// run's last figures.
func (p *progress) stop(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; len(p.running) > 0; i++ {
		ph := p.running[0]
		p.remove(ph)
		s := fmt.Sprintf("stopped by %s after %s: %s", why, roundDur(p.now().Sub(ph.began)), ph.status())
		if p.brokers != nil && i == 0 {
			s += "; " + p.brokers()
		}
		p.line(ph, s)
	}
}

func (p *progress) remove(ph *phase) {
	for i, r := range p.running {
		if r == ph {
			p.running = append(p.running[:i], p.running[i+1:]...)
			break
		}
	}
	if len(p.running) == 0 && p.stopTk != nil {
		close(p.stopTk)
		p.stopTk = nil
	}
}

func (p *progress) ticker(stop chan struct{}) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.tick()
		}
	}
}

// tick prints a line for each running phase, the brokers on the first
// (the CPU they used is since the last look).
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ph := range p.running {
		s := ph.status() + " after " + roundDur(p.now().Sub(ph.began))
		if ph.more != nil {
			if m := ph.more(); m != "" {
				s += "; " + m
			}
		}
		if p.brokers != nil && i == 0 {
			s += "; " + p.brokers()
		}
		p.line(ph, s)
	}
}

func (ph *phase) status() string {
	if ph.total <= 0 {
		return "running"
	}
	return countLine(ph.done(), ph.total)
}

// line writes "fleetsim 1:23 connect storm: …", the time since the run
// began first.
func (p *progress) line(ph *phase, s string) {
	fmt.Fprintf(p.w, "fleetsim %s %s: %s\n", clock(p.now().Sub(p.began)), ph.name, s)
}

// countLine is "312 of 1000 (31 %)".
func countLine(done, total int) string {
	return fmt.Sprintf("%d of %d (%d %%)", done, total, done*100/total)
}

// clock is a run's elapsed time as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d / time.Second)
	if s < 3600 {
		return fmt.Sprintf("%d:%02d", s/60, s%60)
	}
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// roundDur keeps a duration short: ms below a second, then 0.1 s, then
// whole seconds from a minute on.
func roundDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// procWatch reads the brokers' memory and CPU from /proc.
type procWatch struct {
	names []string
	pids  []int

	mu   sync.Mutex // the ticker and the phases' ends both look
	last []procSample
}

type procSample struct {
	at    time.Time
	ticks int64 // utime + stime
}

// String is "brokers n1 310 MB 95 %, n2 …": RSS and the CPU used since
// the last look (a killed node is "gone").
func (w *procWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = make([]procSample, len(w.pids))
	}
	var parts []string
	for i, pid := range w.pids {
		now := time.Now()
		ticks, ok := cpuTicks(pid)
		if !ok {
			parts = append(parts, w.names[i]+" gone")
			continue
		}
		s := fmt.Sprintf("%s %d MB", w.names[i], rssOf(pid)>>20)
		if l := w.last[i]; !l.at.IsZero() {
			s += " " + cpuPercent(ticks-l.ticks, now.Sub(l.at))
		}
		w.last[i] = procSample{now, ticks}
		parts = append(parts, s)
	}
	return "brokers " + strings.Join(parts, ", ")
}

// cpuPercent is the share of one core the ticks (USER_HZ, 100 a
// second on Linux) are of the interval.
func cpuPercent(ticks int64, d time.Duration) string {
	if d <= 0 {
		return "? %"
	}
	return fmt.Sprintf("%.0f %%", float64(ticks)*1e9/float64(d))
}

// cpuTicks is utime + stime from /proc/pid/stat; false for a process
// that is gone.
func cpuTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command, which may hold spaces, in ")".
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 || f[0] == "Z" { // a zombie: dead, not yet reaped
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, true
}

// The links' warnings the progress counts (link.go's words).
const (
	warnSubscribe = "cannot subscribe to commands"
	warnLost      = "broker connection lost"
)

// linkWarnings is the links' logger: it counts their warnings and errors
// by message, so the progress can tell how often they asked again for
// their subscriptions or lost their broker.
type linkWarnings struct {
	mu sync.Mutex
	n  map[string]int
}

var _ slog.Handler = (*linkWarnings)(nil)

func newLinkWarnings() *linkWarnings { return &linkWarnings{n: map[string]int{}} }

func (w *linkWarnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *linkWarnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.n[r.Message]++
	w.mu.Unlock()
	return nil
}

func (w *linkWarnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *linkWarnings) WithGroup(string) slog.Handler      { return w }

func (w *linkWarnings) count(msg string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[msg]
}

// String is every message counted, "broker connection lost 333, …",
// or "none".
func (w *linkWarnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []string
	for m, n := range w.n {
		s = append(s, fmt.Sprintf("%s %d", m, n))
	}
	if len(s) == 0 {
		return "none"
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}
