package wifi

import (
	"context"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/internal/wpabus"
)

// Country is [wifi] country: the ISO 3166-1 alpha-2 code of the
// country the box is in ("DE"), which sets the radio's regulatory
// domain (channels, transmit power, DFS). Empty: the kernel's default,
// the world domain "00", which allows fewer channels and less power.
type Country string

// iso3166 holds every assigned ISO 3166-1 alpha-2 code, two letters
// each, in order and unspaced (bytes count: the binary has a size budget).
const iso3166 = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBY" +
	"BZCACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFK" +
	"FMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIR" +
	"ISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMK" +
	"MLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPM" +
	"PNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTF" +
	"TGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW"

// Validate is called by the config file's walk at the key's own line.
func (c Country) Validate() error {
	s := string(c)
	switch {
	case s == "" || isCountryCode(s):
		return nil
	case isCountryCode(strings.ToUpper(s)):
		return &FieldError{"", fmt.Sprintf("%q: write the country code in capitals, %q", s, strings.ToUpper(s))}
	case len(s) == 2:
		return &FieldError{"", fmt.Sprintf("%q is not an assigned ISO 3166-1 alpha-2 country code (e.g. \"DE\", \"GB\", \"US\")", s)}
	}
	return &FieldError{"", fmt.Sprintf("%q is not a country code: two capital letters of ISO 3166-1 alpha-2, e.g. \"DE\"", s)}
}

// isCountryCode says whether s is one of the assigned codes.
func isCountryCode(s string) bool {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return false
	}
	for i := 0; i < len(iso3166); i += 2 {
		if iso3166[i:i+2] == s {
			return true
		}
	}
	return false
}

// SetCountry sets the regulatory domain through wpa_supplicant's
// country setting (the Interface's Country property), which it hands
// to the kernel (nl80211 REQ_SET_REG) as `iw reg set` does. The kernel
// applies it once it has read its regulatory database; RegDomain reads
// the kernel's.
func (w *Client) SetCountry(ctx context.Context, c Country) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c == "" {
		return nil
	}
	err := w.obj.CallWithContext(ctx, wpabus.Props+".Set", 0, wpabus.Iface, "Country", dbus.MakeVariant(string(c))).Err
	if err != nil {
		return fmt.Errorf("cannot set the Wi-Fi country %s in wpa_supplicant: %w", c, err)
	}
	w.log.Info("Wi-Fi country set", "country", string(c))
	return nil
}
