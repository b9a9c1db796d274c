package daemon

import (
	"testing"
	"time"
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
		{6, time.Minute, giveWayHoldMax}, // 32 min, bounded
		{60, time.Minute, giveWayHoldMax},
		{1 << 30, 24 * time.Hour, giveWayHoldMax}, // no overflow
		{2, 0, 0}, // setup_after off: no hotspot by itself
	} {
		if got := giveWayHold(c.n, c.after); got != c.want {
			t.Errorf("giveWayHold(%d, %s) = %s, want %s", c.n, c.after, got, c.want)
		}
	}
}
