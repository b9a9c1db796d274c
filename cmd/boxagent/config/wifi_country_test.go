package config

import (
	"strings"
	"testing"
)

// TestWiFiCountryValidation: [wifi] country is checked with its key and
// line, as every other key.
func TestWiFiCountryValidation(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`"DE"`, ""},
		{`"US"`, ""},
		{`"de"`, `config.toml:3: wifi.country: "de": write the country code in capitals, "DE"`},
		{`"XX"`, `config.toml:3: wifi.country: "XX" is not an assigned ISO 3166-1 alpha-2 country code`},
		{`"DEU"`, `config.toml:3: wifi.country: "DEU" is not a country code`},
		{`49`, `config.toml:3: wifi.country: want a string, not an integer`},
	} {
		cfg, err := Parse("config.toml", []byte("[wifi]\ninterface = \"wlan0\"\ncountry = "+c.value+"\n"))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.value, err)
		case c.want == "" && `"`+string(cfg.WiFi.Country)+`"` != c.value:
			t.Errorf("%s: country %q", c.value, cfg.WiFi.Country)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: %v, want %s…", c.value, err, c.want)
		}
	}
}
