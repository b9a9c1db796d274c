package wifi

import (
	"errors"
	"strings"
	"testing"
)

func TestWiFiCountryValidate(t *testing.T) {
	for _, c := range []struct {
		in   Country
		want string // "" valid, else a part of the message
	}{
		{"", ""}, {"DE", ""}, {"GB", ""}, {"US", ""}, {"JP", ""}, {"ZW", ""}, {"AD", ""},
		{"de", `capitals, "DE"`},
		{"XX", "not an assigned"},
		{"UK", "not an assigned"}, // the United Kingdom is GB
		{"00", "not an assigned"}, // the world domain is the default: leave country out
		{"D", "not a country code"},
		{"DEU", "not a country code"},
		{"D E", "not a country code"},
		{"É1", "not a country code"},
	} {
		err := c.in.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%q: %v, want …%s… (ErrInvalid)", c.in, err, c.want)
		}
	}
	// The table holds 249 distinct codes, two capitals each, in order.
	if len(iso3166) != 2*249 {
		t.Errorf("%d bytes, want the 249 codes of ISO 3166-1", len(iso3166))
	}
	for i := 2; i+2 <= len(iso3166); i += 2 {
		if c := iso3166[i : i+2]; !isCountryCode(c) || c <= iso3166[i-2:i] {
			t.Errorf("table entry %q after %q", c, iso3166[i-2:i])
		}
	}
}
