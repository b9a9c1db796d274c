// Package clock is the time a state machine runs on, so that its tests
// can move it: network's DHCP client and wifi's setup (its timer and
// its give-way) take a Clock, System on a box and clocktest.Fake in
// tests.
package clock

import "time"

// Clock is the time now and calls after a while.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call of Clock.AfterFunc.
type Timer interface {
	Stop() bool
}

// System is the time package's clock.
type System struct{}

func (System) Now() time.Time                            { return time.Now() }
func (System) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
