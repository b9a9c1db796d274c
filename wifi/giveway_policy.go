package wifi

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/boxagent/boxagent/internal/clock"
)

// When the setup hotspot gives way (giveway.go has the watch itself):
// one that setup_after opened (the box came up before the home router,
// after a power cut) closes by itself when a saved network is in range
// again, and the box joins it. A hotspot opened by hand stays until
// setup ends: someone wants to change networks. After giving way the
// setup_after timer (Setup's) runs again, so a saved network that is in
// range but does not join (its password changed) brings the hotspot
// back; it then holds before it looks again, longer each time, so it
// does not close and reopen every setup_after under someone using it.

// GiveWayHoldMax bounds the hold: the router's return is still found
// within half an hour.
const GiveWayHoldMax = 30 * time.Minute

// GiveWayHold is how long a hotspot that opened by itself holds before
// it looks for the saved networks, after n give-ways in a row that did
// not end in a join: nothing the first time, then setupAfter, doubled
// each time up to GiveWayHoldMax.
func GiveWayHold(n int, setupAfter time.Duration) time.Duration {
	if n <= 0 || setupAfter <= 0 {
		return 0
	}
	hold := setupAfter
	for range n - 1 {
		if hold >= GiveWayHoldMax/2 {
			return GiveWayHoldMax
		}
		hold *= 2
	}
	return min(hold, GiveWayHoldMax)
}

// Watcher is a running watch for the saved networks (*GiveWay is one).
type Watcher interface {
	SSIDs() []string
	Close(ctx context.Context) error
}

// giveWayWatchTimeout bounds a watch's start: an interface added,
// handed to wpa_supplicant, its networks added.
const giveWayWatchTimeout = 15 * time.Second

// GiveWayPolicyOptions configure a GiveWayPolicy.
type GiveWayPolicyOptions struct {
	// Clock is the policy's time; default clock.System.
	Clock  clock.Clock
	Logger *slog.Logger
	// SetupAfter is [wifi] setup_after in effect: the first hold.
	SetupAfter func() time.Duration
	// Saved is the saved networks in effect, read when a watch starts.
	Saved func() []Network
	// Watch starts a watch for saved that calls found with the first
	// one seen (WatchSaved on a box). A nil Watcher and error means there
	// is nothing to watch with (no bus yet).
	Watch func(ctx context.Context, saved []Network, found func(BSS)) (Watcher, error)
	// GiveWay is called, on the watch's goroutine, when a saved network
	// is in range while the hotspot is open: the caller closes it.
	GiveWay func(BSS)
}

// GiveWayPolicy decides when the setup hotspot watches for the saved
// networks, and counts the give-ways that did not end in a join. The
// caller tells it when the hotspot opens and closes and when a network
// joins.
type GiveWayPolicy struct {
	o   GiveWayPolicyOptions
	log *slog.Logger

	mu      sync.Mutex
	open    bool // between Opened and Closed
	auto    bool // the open hotspot opened by itself
	watch   Watcher
	gaveWay int         // give-ways in a row that did not end in a join
	hold    clock.Timer // the watch's start after a hold
	holdEnd time.Time
}

// NewGiveWayPolicy makes a policy for a hotspot that is closed.
func NewGiveWayPolicy(o GiveWayPolicyOptions) *GiveWayPolicy {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &GiveWayPolicy{o: o, log: o.Logger}
}

// Report adds the policy's part to a hotspot's status: the networks
// watched for, and the hold with the give-ways that called for it.
func (p *GiveWayPolicy) Report(st *SetupStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watch != nil {
		st.WatchesFor = p.watch.SSIDs()
	}
	if p.hold != nil {
		end := p.holdEnd.UTC()
		st.HoldsUntil, st.GaveWay = &end, p.gaveWay
	}
}

// Watching says whether a watch of this policy runs.
func (p *GiveWayPolicy) Watching() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watch != nil
}

// Joined is a station link that completed: the give-ways count from
// zero again.
func (p *GiveWayPolicy) Joined() {
	p.mu.Lock()
	p.gaveWay = 0
	p.mu.Unlock()
}

// Opened is the hotspot up; auto when it opened by itself. Such a one
// watches for the saved networks at once, or after the hold that
// give-ways which did not join call for; one opened by hand never does.
func (p *GiveWayPolicy) Opened(auto bool) {
	after := p.o.SetupAfter()
	p.mu.Lock()
	p.open, p.auto = true, auto
	if p.hold != nil { // one is pending already
		p.mu.Unlock()
		return
	}
	hold, n := GiveWayHold(p.gaveWay, after), p.gaveWay
	if hold == 0 || !auto {
		p.mu.Unlock()
		p.startWatch()
		return
	}
	p.holdEnd = p.o.Clock.Now().Add(hold)
	var t clock.Timer
	t = p.o.Clock.AfterFunc(hold, func() {
		p.mu.Lock()
		mine := p.hold == t
		if mine {
			p.hold = nil
		}
		p.mu.Unlock()
		if mine {
			p.startWatch()
		}
	})
	p.hold = t
	p.mu.Unlock()
	p.log.Info("the setup hotspot holds before it looks for the saved networks again: the last give-way did not join",
		"hold", hold, "gave_way", n)
}

// startWatch starts the watch, if the hotspot is open, opened by
// itself, and there are saved networks; a watch that cannot start is
// logged, and the hotspot stays.
func (p *GiveWayPolicy) startWatch() {
	p.mu.Lock()
	want := p.open && p.auto
	p.mu.Unlock()
	saved := p.o.Saved()
	if !want || len(saved) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), giveWayWatchTimeout)
	defer cancel()
	w, err := p.o.Watch(ctx, saved, p.found)
	if err != nil {
		p.log.Warn("the setup hotspot cannot watch for the saved networks: it stays until setup ends", "err", err)
		return
	}
	if w == nil {
		return
	}
	p.mu.Lock()
	closed := !p.open // the hotspot closed meanwhile
	if !closed {
		p.watch = w
	}
	p.mu.Unlock()
	if closed {
		w.Close(context.Background())
	}
}

// found is a saved network in range: the hotspot gives way, if it is
// open and this policy's watch runs.
func (p *GiveWayPolicy) found(b BSS) {
	p.mu.Lock()
	on := p.open && p.watch != nil
	if on {
		p.gaveWay++ // until a join resets it
	}
	p.mu.Unlock()
	if on && p.o.GiveWay != nil {
		p.o.GiveWay(b)
	}
}

// Rewatch follows a change of the saved networks: a hotspot that gives
// way watches for the new list (a pending hold reads it when it ends).
func (p *GiveWayPolicy) Rewatch() {
	p.mu.Lock()
	on := p.open && p.auto && p.hold == nil
	p.mu.Unlock()
	if !on {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), giveWayWatchTimeout)
	defer cancel()
	p.stopWatch(ctx)
	p.startWatch()
}

// Closed is the hotspot going down: the hold and the watch end.
func (p *GiveWayPolicy) Closed(ctx context.Context) {
	p.mu.Lock()
	p.open = false
	if p.hold != nil {
		p.hold.Stop()
		p.hold = nil
	}
	p.mu.Unlock()
	p.stopWatch(ctx)
}

// stopWatch ends the watch, if one runs.
func (p *GiveWayPolicy) stopWatch(ctx context.Context) {
	p.mu.Lock()
	w := p.watch
	p.watch = nil
	p.mu.Unlock()
	if w == nil {
		return
	}
	if err := w.Close(ctx); err != nil {
		p.log.Warn("cannot end the watch for the saved networks", "err", err)
	}
}
