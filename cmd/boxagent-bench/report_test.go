package main

import "testing"

func TestRow(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before      bool
		cells       []string
		bCell, bRat string
		want        string
	}{
		{"no before: as it always was", false, []string{"boxagent", "floor", "ratio"}, "boxagent before", "after ÷ before",
			"| boxagent | floor | ratio |\n"},
		{"before: its cell ahead of the floor's, its ratio ahead of the floor's", true, []string{"boxagent", "floor", "ratio"}, "boxagent before", "after ÷ before",
			"| boxagent | boxagent before | floor | after ÷ before | ratio |\n"},
		{"before, leading cells kept", true, []string{"1", "p50 latency", "50µs", "40µs", "1.25×"}, "45µs", "1.11×",
			"| 1 | p50 latency | 50µs | 45µs | 40µs | 1.11× | 1.25× |\n"},
		{"before, the idle table's fleet column kept", true, []string{"RSS", "a", "fleet", "f", "a÷f"}, "b", "a÷b",
			"| RSS | a | fleet | b | f | a÷b | a÷f |\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{before: tc.before}
			r.row(tc.cells, tc.bCell, tc.bRat)
			if got := r.String(); got != tc.want {
				t.Errorf("row = %q, want %q", got, tc.want)
			}
		})
	}
}
