package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestProgressFormat(t *testing.T) {
	for _, c := range []struct {
		name, got, want string
	}{
		{"clock zero", clock(0), "0:00"},
		{"clock seconds", clock(59999 * time.Millisecond), "0:59"},
		{"clock minutes", clock(35*time.Minute + 7*time.Second), "35:07"},
		{"clock hours", clock(time.Hour + 2*time.Minute + 3*time.Second), "1:02:03"},
		{"ms", roundDur(693400 * time.Microsecond), "693ms"},
		{"tenths", roundDur(18740 * time.Millisecond), "18.7s"},
		{"seconds", roundDur(16*time.Minute + 400*time.Millisecond), "16m0s"},
		{"count", countLine(312, 1000), "312 of 1000 (31 %)"},
		{"count done", countLine(5000, 5000), "5000 of 5000 (100 %)"},
		{"cpu one core", cpuPercent(500, 5*time.Second), "100 %"},
		{"cpu part", cpuPercent(95, 2*time.Second), "48 %"},
		{"cpu no interval", cpuPercent(5, 0), "? %"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestProgressPhases drives the bookkeeping with a fake clock: what each
// step prints, quiet or not, and which phases a tick and a stop see.
func TestProgressPhases(t *testing.T) {
	type step struct {
		do      func(p *progress, phs map[string]*phase)
		want    []string // lines, the "fleetsim " prefix left out
		ticking bool     // a ticker runs after the step
	}
	done := 0
	count := func() int { return done }
	begin := func(name string, total int) func(*progress, map[string]*phase) {
		return func(p *progress, phs map[string]*phase) {
			phs[name] = p.begin(name, total, count, func() string { return "3 retries" })
		}
	}
	for _, c := range []struct {
		name  string
		quiet bool
		steps []step
	}{
		{"one phase", false, []step{
			{begin("connect storm", 1000), []string{"0:10 connect storm: started"}, true},
			{func(p *progress, _ map[string]*phase) { done = 312; p.tick() }, []string{"0:20 connect storm: 312 of 1000 (31 %) after 10s; 3 retries; brokers n1 300 MB"}, true},
			{func(p *progress, phs map[string]*phase) { p.end(phs["connect storm"], "1000 online") }, []string{"0:30 connect storm: ended after 20s: 1000 online"}, false},
			{func(p *progress, _ map[string]*phase) { p.tick() }, nil, false},
			{func(p *progress, _ map[string]*phase) { p.stop("-timeout 1m0s") }, nil, false},
		}},
		{"overlapping phases, stopped", false, []step{
			{begin("burst", 11000), []string{"0:10 burst: started"}, true},
			{begin("node kill", 0), []string{"0:20 node kill: started"}, true},
			{func(p *progress, _ map[string]*phase) { done = 5500; p.tick() }, []string{
				"0:30 burst: 5500 of 11000 (50 %) after 20s; 3 retries; brokers n1 300 MB",
				"0:30 node kill: running after 10s; 3 retries",
			}, true},
			{func(p *progress, phs map[string]*phase) { p.end(phs["node kill"], "back") }, []string{"0:40 node kill: ended after 20s: back"}, true},
			{func(p *progress, _ map[string]*phase) { p.stop("interrupt") }, []string{"0:50 burst: stopped by interrupt after 40s: 5500 of 11000 (50 %); brokers n1 300 MB"}, false},
			{func(p *progress, _ map[string]*phase) { p.tick() }, nil, false},
		}},
		{"quiet keeps the figures", true, []step{
			{begin("group command", 1000), nil, false},
			{func(p *progress, phs map[string]*phase) { p.end(phs["group command"], "p50 1s") }, []string{"0:20 group command: ended after 10s: p50 1s"}, false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			done = 0
			var out strings.Builder
			now := time.Unix(0, 0)
			// A ticker that never fires: the steps tick themselves.
			p := &progress{w: &out, quiet: c.quiet, every: time.Hour, began: now, now: func() time.Time { return now }}
			p.watchBrokers(func() string { return "brokers n1 300 MB" })
			phs := map[string]*phase{}
			for i, s := range c.steps {
				now = now.Add(10 * time.Second)
				out.Reset()
				s.do(p, phs)
				var got []string
				for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
					if l != "" {
						got = append(got, strings.TrimPrefix(l, "fleetsim "))
					}
				}
				if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
					t.Errorf("step %d:\n got %q\nwant %q", i, got, s.want)
				}
				if ticking := p.stopTk != nil; ticking != s.ticking {
					t.Errorf("step %d: ticker running %v, want %v", i, ticking, s.ticking)
				}
			}
		})
	}
}

func TestLinkWarnings(t *testing.T) {
	for _, c := range []struct {
		name string
		log  func(*slog.Logger)
		want string
		lost int
	}{
		{"none", func(*slog.Logger) {}, "none", 0},
		{"info is not counted", func(l *slog.Logger) { l.Info("connected to the fleet broker") }, "none", 0},
		{"by message, with attributes", func(l *slog.Logger) {
			l = l.With("component", "fleet")
			l.Warn(warnLost, "err", "EOF")
			l.Warn(warnLost)
			l.Warn(warnSubscribe, "again_in", "1s")
			l.Error("cannot journal a refused command")
		}, "broker connection lost 2, cannot journal a refused command 1, cannot subscribe to commands 1", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newLinkWarnings()
			c.log(slog.New(w))
			if got := w.String(); got != c.want {
				t.Errorf("%q, want %q", got, c.want)
			}
			if got := w.count(warnLost); got != c.lost {
				t.Errorf("lost %d, want %d", got, c.lost)
			}
		})
	}
}
