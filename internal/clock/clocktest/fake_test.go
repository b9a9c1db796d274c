package clocktest

import (
	"slices"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	c := New(t0)
	var fired []string
	at := func(name string, d time.Duration) func() bool {
		return c.AfterFunc(d, func() {
			fired = append(fired, name)
			if name == "b" { // a timer armed from a firing runs in turn
				c.AfterFunc(time.Second, func() { fired = append(fired, "b+1s") })
			}
		}).Stop
	}
	at("c", 3*time.Second)
	at("a", time.Second)
	stopD := at("d", 2*time.Second)
	at("b", 2*time.Second)
	if !stopD() || stopD() {
		t.Error("Stop: true once, then false")
	}
	c.Advance(2 * time.Second)
	if want := []string{"a", "b"}; !slices.Equal(fired, want) || !c.Now().Equal(t0.Add(2*time.Second)) {
		t.Errorf("after 2s: %v at %s, want %v", fired, c.Now().Sub(t0), want)
	}
	for c.FireNext() {
	}
	if want := []string{"a", "b", "c", "b+1s"}; !slices.Equal(fired, want) || !c.Now().Equal(t0.Add(3*time.Second)) {
		t.Errorf("all fired: %v at %s, want %v", fired, c.Now().Sub(t0), want)
	}
	c.Advance(time.Minute)
	if !c.Now().Equal(t0.Add(3*time.Second + time.Minute)) {
		t.Errorf("Advance without timers: at %s", c.Now().Sub(t0))
	}
}
