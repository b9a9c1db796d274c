// Package clocktest is a clock.Clock that moves only when the test says.
package clocktest

import (
	"slices"
	"sync"
	"time"

	"github.com/boxagent/boxagent/internal/clock"
)

// Fake is a clock.Clock whose timers run when FireNext or Advance reach
// them, on the caller's goroutine.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

type timer struct {
	c  *Fake
	at time.Time
	f  func()
}

var _ clock.Clock = (*Fake)(nil)

// New is a Fake at t0.
func New(t0 time.Time) *Fake { return &Fake{now: t0} }

func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Fake) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// FireNext moves the clock to the earliest pending timer and fires it;
// false when none is pending.
func (c *Fake) FireNext() bool {
	return c.fireBy(time.Time{})
}

// Advance moves the clock by d, firing the timers it passes in their
// order.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	until := c.now.Add(d)
	c.mu.Unlock()
	for c.fireBy(until) {
	}
	c.mu.Lock()
	if c.now.Before(until) {
		c.now = until
	}
	c.mu.Unlock()
}

// fireBy fires the earliest pending timer, if there is one due by until
// (any, for the zero time).
func (c *Fake) fireBy(until time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	i := 0
	for j, t := range c.timers {
		if t.at.Before(c.timers[i].at) {
			i = j
		}
	}
	t := c.timers[i]
	if !until.IsZero() && t.at.After(until) {
		c.mu.Unlock()
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	if t.at.After(c.now) {
		c.now = t.at
	}
	c.mu.Unlock()
	t.f()
	return true
}
