package network

import (
	"context"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// WiFiCountry is [wifi] country: the ISO 3166-1 alpha-2 code of the
// country the box is in ("DE"), which sets the radio's regulatory
// domain (channels, transmit power, DFS). Empty: the kernel's default,
// the world domain "00", which allows fewer channels and less power.
type WiFiCountry string

// iso3166 holds every assigned ISO 3166-1 alpha-2 code, two letters each.
const iso3166 = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT " +
	"MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG " +
	"UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"

// Validate is called by the config file's walk at the key's own line.
func (c WiFiCountry) Validate() error {
	s := string(c)
	switch {
	case s == "" || isCountryCode(s):
		return nil
	case isCountryCode(strings.ToUpper(s)):
		return &WiFiFieldError{"", fmt.Sprintf("%q: write the country code in capitals, %q", s, strings.ToUpper(s))}
	case len(s) == 2:
		return &WiFiFieldError{"", fmt.Sprintf("%q is not an assigned ISO 3166-1 alpha-2 country code (e.g. \"DE\", \"GB\", \"US\")", s)}
	}
	return &WiFiFieldError{"", fmt.Sprintf("%q is not a country code: two capital letters of ISO 3166-1 alpha-2, e.g. \"DE\"", s)}
}

// isCountryCode says whether s is one of the assigned codes.
func isCountryCode(s string) bool {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return false
	}
	return strings.Contains(" "+iso3166+" ", " "+s+" ")
}

// SetCountry sets the regulatory domain through wpa_supplicant's
// country setting (the Interface's Country property), which it hands
// to the kernel (nl80211 REQ_SET_REG) as `iw reg set` does. The kernel
// applies it once it has read its regulatory database; Country reads
// back what wpa_supplicant holds.
func (w *WiFi) SetCountry(ctx context.Context, c WiFiCountry) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c == "" {
		return nil
	}
	err := w.obj.CallWithContext(ctx, dbusProps+".Set", 0, wpaIface, "Country", dbus.MakeVariant(string(c))).Err
	if err != nil {
		return fmt.Errorf("cannot set the Wi-Fi country %s in wpa_supplicant: %w", c, err)
	}
	w.log.Info("Wi-Fi country set", "country", string(c))
	return nil
}

// Country is the country code wpa_supplicant holds for the interface.
func (w *WiFi) Country(ctx context.Context) (string, error) {
	var v dbus.Variant
	if err := w.obj.CallWithContext(ctx, dbusProps+".Get", 0, wpaIface, "Country").Store(&v); err != nil {
		return "", fmt.Errorf("cannot read the Wi-Fi country: %w", err)
	}
	s, _ := v.Value().(string)
	return s, nil
}
