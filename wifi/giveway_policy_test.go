package wifi

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/boxagent/boxagent/internal/clock/clocktest"
)

func TestGiveWayHold(t *testing.T) {
	for _, c := range []struct {
		n     int
		after time.Duration
		want  time.Duration
	}{
		{0, time.Minute, 0},               // the first give-way is at once: the router's return
		{1, time.Minute, time.Minute},     // one did not join: setup_after
		{2, time.Minute, 2 * time.Minute}, // doubled
		{3, 5 * time.Second, 20 * time.Second},
		{5, time.Minute, 16 * time.Minute},
		{6, time.Minute, GiveWayHoldMax}, // 32 min, bounded
		{60, time.Minute, GiveWayHoldMax},
		{1 << 30, 24 * time.Hour, GiveWayHoldMax}, // no overflow
		{2, 0, 0}, // setup_after off: no hotspot by itself
	} {
		if got := GiveWayHold(c.n, c.after); got != c.want {
			t.Errorf("GiveWayHold(%d, %s) = %s, want %s", c.n, c.after, got, c.want)
		}
	}
}

// fakeWatch is a watch that finds what the test says.
type fakeWatch struct {
	ssids  []string
	found  func(BSS)
	closed bool
}

func (w *fakeWatch) SSIDs() []string             { return w.ssids }
func (w *fakeWatch) Close(context.Context) error { w.closed = true; return nil }

// giveWayFixture is a policy on a fake clock with fake watches.
type giveWayFixture struct {
	clock   *clocktest.Fake
	p       *GiveWayPolicy
	saved   []Network
	fail    error        // the next watches' start fails
	watches []*fakeWatch // every watch started
	gave    []string     // the give-ways' SSIDs
}

func newGiveWayFixture() *giveWayFixture {
	f := &giveWayFixture{clock: clocktest.New(time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)),
		saved: []Network{{SSID: "home"}}}
	f.p = NewGiveWayPolicy(GiveWayPolicyOptions{
		Clock:      f.clock,
		SetupAfter: func() time.Duration { return time.Minute },
		Saved:      func() []Network { return f.saved },
		Watch: func(_ context.Context, saved []Network, found func(BSS)) (Watcher, error) {
			if f.fail != nil {
				return nil, f.fail
			}
			w := &fakeWatch{found: found}
			for _, n := range saved {
				w.ssids = append(w.ssids, n.SSID)
			}
			f.watches = append(f.watches, w)
			return w, nil
		},
		GiveWay: func(b BSS) { f.gave = append(f.gave, b.SSID) },
	})
	return f
}

// live is the watch that runs, or nil.
func (f *giveWayFixture) live() *fakeWatch {
	if n := len(f.watches); n > 0 && !f.watches[n-1].closed {
		return f.watches[n-1]
	}
	return nil
}

// find is the live watch seeing ssid; then the hotspot closes, as the
// agent's give-way does.
func (f *giveWayFixture) find(ssid string) {
	if w := f.live(); w != nil {
		w.found(BSS{SSID: ssid})
	}
	f.p.Closed(context.Background())
}

// TestGiveWayPolicy: when the hotspot watches for the saved networks,
// and the hold that give-ways which did not join call for.
func TestGiveWayPolicy(t *testing.T) {
	for _, c := range []struct {
		name     string
		run      func(f *giveWayFixture)
		started  int           // watches started
		watching []string      // the live watch's networks; nil: none
		gave     []string      // give-ways reported
		hold     time.Duration // the hold's end, from the test's start
		gaveWay  int           // in the status, with a hold
	}{
		{name: "opened by itself: watch at once",
			run:     func(f *giveWayFixture) { f.p.Opened(true) },
			started: 1, watching: []string{"home"}},
		{name: "opened by hand: never",
			run: func(f *giveWayFixture) { f.p.Opened(false) }},
		{name: "no saved network: nothing to watch",
			run: func(f *giveWayFixture) { f.saved = nil; f.p.Opened(true) }},
		{name: "a watch that cannot start: the hotspot stays",
			run: func(f *giveWayFixture) { f.fail = errors.New("no second interface"); f.p.Opened(true) }},
		{name: "found: gives way once, the watch ends with the hotspot",
			run:     func(f *giveWayFixture) { f.p.Opened(true); f.find("home") },
			started: 1, gave: []string{"home"}},
		{name: "reopened after a give-way that did not join: holds setup_after",
			run:     func(f *giveWayFixture) { f.p.Opened(true); f.find("home"); f.p.Opened(true) },
			started: 1, gave: []string{"home"}, hold: time.Minute, gaveWay: 1},
		{name: "the hold ends: watch again",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				f.find("home")
				f.p.Opened(true)
				f.clock.Advance(time.Minute)
			},
			started: 2, watching: []string{"home"}, gave: []string{"home"}},
		{name: "two give-ways without a join: the hold doubles",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				f.find("home")
				f.p.Opened(true)
				f.clock.Advance(time.Minute)
				f.find("home")
				f.p.Opened(true)
				f.clock.Advance(time.Minute) // not yet
			},
			started: 2, gave: []string{"home", "home"}, hold: 3 * time.Minute, gaveWay: 2}, // opened at 1 min, 2 min
		{name: "a join resets the count: watch at once",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				f.find("home")
				f.p.Joined()
				f.p.Opened(true)
			},
			started: 2, watching: []string{"home"}, gave: []string{"home"}},
		{name: "closed during the hold: no watch after it",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				f.find("home")
				f.p.Opened(true)
				f.p.Closed(context.Background())
				f.clock.Advance(time.Hour)
			},
			started: 1, gave: []string{"home"}},
		{name: "the hold's end reads the saved networks then",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				f.find("home")
				f.p.Opened(true)
				f.saved = []Network{{SSID: "home"}, {SSID: "cafe"}}
				f.p.Rewatch() // a pending hold: nothing now
				f.clock.Advance(time.Minute)
			},
			started: 2, watching: []string{"home", "cafe"}, gave: []string{"home"}},
		{name: "new saved networks: the watch follows",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				f.saved = []Network{{SSID: "cafe"}}
				f.p.Rewatch()
			},
			started: 2, watching: []string{"cafe"}},
		{name: "rewatch of a hotspot opened by hand: nothing",
			run: func(f *giveWayFixture) { f.p.Opened(false); f.p.Rewatch() }},
		{name: "a find after the hotspot closed: no give-way",
			run: func(f *giveWayFixture) {
				f.p.Opened(true)
				w := f.live()
				f.p.Closed(context.Background())
				w.found(BSS{SSID: "home"})
			},
			started: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newGiveWayFixture()
			start := f.clock.Now()
			c.run(f)
			var st SetupStatus
			f.p.Report(&st)
			if len(f.watches) != c.started {
				t.Errorf("%d watches started, want %d", len(f.watches), c.started)
			}
			var watching []string
			if w := f.live(); w != nil {
				watching = w.ssids
			}
			if !slices.Equal(watching, c.watching) || !slices.Equal(st.WatchesFor, c.watching) || f.p.Watching() != (c.watching != nil) {
				t.Errorf("watching %v (status %v), want %v", watching, st.WatchesFor, c.watching)
			}
			if !slices.Equal(f.gave, c.gave) {
				t.Errorf("gave way to %v, want %v", f.gave, c.gave)
			}
			switch {
			case c.hold == 0 && st.HoldsUntil != nil:
				t.Errorf("holds until %s, want no hold", st.HoldsUntil)
			case c.hold != 0 && (st.HoldsUntil == nil || !st.HoldsUntil.Equal(start.Add(c.hold)) || st.GaveWay != c.gaveWay):
				t.Errorf("holds until %v after %d give-ways, want until %s after %d", st.HoldsUntil, st.GaveWay, start.Add(c.hold), c.gaveWay)
			}
		})
	}
}
