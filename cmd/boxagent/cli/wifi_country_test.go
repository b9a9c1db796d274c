package cli

import "testing"

func TestCountryCell(t *testing.T) {
	for _, c := range []struct{ have, want, cell string }{
		{"", "", ""},
		{"DE", "DE", "DE"},
		{"DE", "", "DE"},
		{"00", "", "00 (world)"},
		{"00", "DE", "00 (world); [wifi] country DE is not applied (boxagent doctor says why)"},
		{"US", "DE", "US; [wifi] country DE is not applied (boxagent doctor says why)"},
		{"", "DE", "DE configured; the kernel's domain could not be read"},
	} {
		if got := countryCell(c.have, c.want); got != c.cell {
			t.Errorf("countryCell(%q, %q) = %q, want %q", c.have, c.want, got, c.cell)
		}
	}
}
