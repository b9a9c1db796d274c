package network

import (
	"errors"
	"strings"
	"testing"
)

func TestWiFiCountryValidate(t *testing.T) {
	for _, c := range []struct {
		in   WiFiCountry
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
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrWiFiInvalid)):
			t.Errorf("%q: %v, want …%s… (ErrWiFiInvalid)", c.in, err, c.want)
		}
	}
	// The table holds 249 distinct codes, each two capitals.
	codes := strings.Fields(iso3166)
	seen := map[string]bool{}
	for _, c := range codes {
		if !isCountryCode(c) || seen[c] {
			t.Errorf("table entry %q", c)
		}
		seen[c] = true
	}
	if len(codes) != 249 {
		t.Errorf("%d codes, want the 249 of ISO 3166-1", len(codes))
	}
}
