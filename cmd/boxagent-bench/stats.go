package main

import (
	"fmt"
	"slices"
	"time"
)

// spread is one figure's samples: min, median and max.
type spread struct {
	n             int
	min, med, max float64
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return spread{n: len(s), min: s[0], med: s[len(s)/2], max: s[len(s)-1]}
}

func durations(ds []time.Duration) []float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return xs
}

// dur formats a spread of durations (nanoseconds) as "min / median / max".
func (s spread) dur() string {
	r := func(x float64) string { return roundDur(time.Duration(x)).String() }
	return r(s.min) + " / " + r(s.med) + " / " + r(s.max)
}

// mib formats a spread of sizes in KiB as MiB.
func (s spread) mib() string {
	return fmt.Sprintf("%.1f / %.1f / %.1f MiB", s.min/1024, s.med/1024, s.max/1024)
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 100*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(100 * time.Nanosecond)
	}
}

// ratio is a/b as "1.23×", or "—" without a floor.
func ratio(a, b float64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// interleave runs every contestant once per round, rotating who goes
// first, so that a busy moment of the machine falls on all of them alike.
// A failed sample fails the whole figure: it is never counted as zero.
func interleave(rounds int, contestants ...func() error) error {
	for r := 0; r < rounds; r++ {
		for i := range contestants {
			if err := contestants[(r+i)%len(contestants)](); err != nil {
				return err
			}
		}
	}
	return nil
}

// goal is one of the targets of issue "Lean and event-driven", checked
// against the figure measured in this run.
type goal struct {
	what, want, got string
	met             bool
}
