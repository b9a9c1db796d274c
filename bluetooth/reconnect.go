package bluetooth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Clock is the time the pairing windows and the reconnect backoff use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it and
	// says whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// reconnector keeps the configured auto_connect headsets connected. BlueZ
// reconnects only after a link loss, never at boot, so boxagent connects
// the preferred headset when bluetoothd or the adapter comes up, when the
// headset shows up in range, and after it drops. A failed attempt is
// retried after a delay that doubles up to a bound; nothing runs while
// there is nothing to do (no polling). A headset the user disconnected or
// forgot is left alone until the user connects or pairs it again.
type reconnector struct {
	c *Client

	mu       sync.Mutex
	off      map[string]bool // disconnected on purpose by the user
	running  bool            // an attempt is under way
	again    bool            // a trigger arrived during the attempt
	delay    time.Duration   // the next backoff
	stopT    func() bool     // the pending retry, if any
	stopped  bool
	attempts int
	// cause is what started the current run of failed attempts, and
	// tries how many it made: a retry's success is reported as that
	// cause's ("headset … disconnected, try 3"), not as "retry".
	cause string
	tries int
	// inAttempt is set while an attempt runs; lostDaemon when bluetoothd
	// left the bus during it. An attempt that bluetoothd did not survive
	// (BlueZ 5.66 segfaults when a Connect ends in Page Timeout: a
	// headset out of range) keeps its back-off when bluetoothd comes
	// back: an attempt at once would kill it again, in a loop wherever
	// systemd restarts it.
	inAttempt, lostDaemon, daemonKilled bool
}

func newReconnector(c *Client) *reconnector {
	return &reconnector{c: c, off: map[string]bool{}}
}

// targets are the auto_connect headsets in order of preference.
func (r *reconnector) targets() []string {
	var out []string
	for _, h := range r.c.config().Headsets {
		if a, err := ParseAddress(h.Address); err == nil && h.AutoConnect {
			out = append(out, a)
		}
	}
	return out
}

func (r *reconnector) isTarget(address string) bool {
	for _, a := range r.targets() {
		if a == address {
			return true
		}
	}
	return false
}

func (r *reconnector) userOff(address string) {
	r.mu.Lock()
	r.off[address] = true
	r.mu.Unlock()
}

func (r *reconnector) userWants(address string) {
	r.mu.Lock()
	delete(r.off, address)
	r.mu.Unlock()
}

// deviceSeen: a target showed up (created, or in range during a scan or
// an inquiry): try now rather than at the end of the backoff.
func (r *reconnector) deviceSeen(d Device) {
	if r.isTarget(d.Address) && !d.Connected {
		r.trigger("headset " + d.Address + " seen")
	}
}

// linkLost: a target dropped without the user asking.
func (r *reconnector) linkLost(d Device) {
	if r.isTarget(d.Address) {
		r.trigger("headset " + d.Address + " disconnected")
	}
}

// trigger asks for an attempt now. A pending retry is replaced: a signal
// that something changed is worth more than the backoff's guess.
func (r *reconnector) trigger(why string) {
	if len(r.targets()) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if r.daemonKilled && r.stopT != nil {
		r.c.log.Warn("auto-connect: bluetoothd left the bus during the last attempt; the next waits for the back-off", "why", why, "retry_in", r.delay)
		return
	}
	r.c.log.Info("auto-connect: looking", "why", why)
	if r.running {
		r.again = true
		return
	}
	if r.stopT != nil {
		r.stopT()
		r.stopT = nil
	}
	r.running = true
	go r.attempt(why)
}

func (r *reconnector) retry() {
	r.mu.Lock()
	r.stopT = nil
	if r.stopped || r.running {
		r.mu.Unlock()
		return
	}
	r.running = true
	r.mu.Unlock()
	r.attempt("retry")
}

// pick chooses the headset to connect: nothing when one is connected
// already, else the first target that is paired and not switched off by
// the user.
func (r *reconnector) pick() (Device, bool) {
	r.mu.Lock()
	off := make(map[string]bool, len(r.off))
	for k, v := range r.off {
		off[k] = v
	}
	r.mu.Unlock()
	var cand *Device
	for _, a := range r.targets() {
		d, err := r.c.Device(a)
		if err != nil {
			continue
		}
		if d.Connected {
			r.c.log.Info("auto-connect: a headset is connected", "device", a)
			return Device{}, false
		}
		if cand == nil && d.Paired && !d.Blocked && !off[a] {
			dd := d
			cand = &dd
		}
	}
	if cand == nil {
		r.c.log.Info("auto-connect: no headset to connect (none paired, known and wanted)", "targets", r.targets())
		return Device{}, false
	}
	return *cand, true
}

func (r *reconnector) attempt(why string) {
	for {
		d, ok := r.pick()
		var err error
		if ok {
			if ad, aerr := r.c.adapter(); aerr != nil || !ad.Powered {
				ok = false // the adapter's power-on will trigger us
			}
		}
		if ok {
			r.mu.Lock()
			r.attempts++
			if why != "retry" && r.delay == 0 {
				r.cause, r.tries = why, 0 // a new run of attempts
			}
			r.tries++
			why = r.cause
			if r.tries > 1 {
				why = fmt.Sprintf("%s, try %d", r.cause, r.tries)
			}
			r.mu.Unlock()
			r.mu.Lock()
			r.inAttempt, r.lostDaemon = true, false
			r.mu.Unlock()
			r.c.log.Info("auto-connecting a headset", "device", d.Address, "why", why)
			ctx, cancel := context.WithTimeout(context.Background(), r.c.o.ConnectTimeout)
			_, err = r.c.connect(ctx, d, nil)
			cancel()
		}
		r.mu.Lock()
		r.inAttempt = false
		// The call's answer can come before the bus says bluetoothd left.
		r.daemonKilled = ok && err != nil && (r.lostDaemon || errors.Is(err, ErrAbsent))
		if r.stopped {
			r.running = false
			r.mu.Unlock()
			return
		}
		if ok && err == nil {
			r.delay = 0
			r.mu.Unlock()
			r.c.emit(Event{Type: EventReconnect, Device: &d, Message: "connected (" + why + ")"})
		} else if ok {
			if r.delay == 0 {
				r.delay = r.c.o.BackoffMin
			} else if r.delay *= 2; r.delay > r.c.o.BackoffMax {
				r.delay = r.c.o.BackoffMax
			}
			next := r.delay
			r.stopT = r.c.o.Clock.AfterFunc(next, r.retry)
			r.mu.Unlock()
			r.c.log.Warn("cannot auto-connect a headset", "device", d.Address, "err", err, "retry_in", next)
			r.c.emit(Event{Type: EventReconnect, Device: &d, Error: err.Error(), Message: "next try in " + next.String()})
		} else {
			r.mu.Unlock()
		}
		r.mu.Lock()
		// Signals during a failed attempt are mostly the attempt's own
		// (Connected flapping): the backoff stands. Otherwise look again.
		if r.again && !r.stopped && r.stopT == nil {
			r.again = false
			r.mu.Unlock()
			why = "signal during the attempt"
			continue
		}
		r.again = false
		r.running = false
		r.mu.Unlock()
		return
	}
}

// daemonLeft: bluetoothd left the bus.
func (r *reconnector) daemonLeft() {
	r.mu.Lock()
	if r.inAttempt {
		r.lostDaemon = true
	}
	r.mu.Unlock()
}

func (r *reconnector) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.stopT != nil {
		r.stopT()
		r.stopT = nil
	}
}

// ReconnectState is what auto-reconnect is doing, for tests and status.
type ReconnectState struct {
	Attempts int
	Delay    time.Duration // the current backoff; 0 after a success
	Pending  bool          // a retry is scheduled
}

// ReconnectState reports the auto-reconnect state.
func (c *Client) ReconnectState() ReconnectState {
	r := c.rc
	r.mu.Lock()
	defer r.mu.Unlock()
	return ReconnectState{Attempts: r.attempts, Delay: r.delay, Pending: r.stopT != nil}
}
