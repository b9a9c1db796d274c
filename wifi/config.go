package wifi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/boxagent/boxagent/internal/names"
)

// Config is the [wifi] table of the config file: which wireless
// interface boxagent drives and the saved networks, [[wifi.network]].
type Config struct {
	// Interface is the wireless link, e.g. "wlan0"; empty: the first one
	// the kernel has.
	Interface  string     `toml:"interface" json:"interface,omitempty"`
	Networks   []Network  `toml:"network" json:"network,omitempty"`
	SetupAfter SetupAfter `toml:"setup_after,omitempty" json:"setup_after,omitempty"` // hotspot_config.go
	Country    Country    `toml:"country,omitempty" json:"country,omitempty"`         // country.go

	RouteMetric *RouteMetric `toml:"route_metric,omitempty" json:"route_metric,omitempty"` // metric.go
}

// Security kinds of a network, as the config file, the API and scan
// results spell them.
const (
	SecurityOpen       = "open"
	SecurityWEP        = "wep"        // seen in scans only: never joined
	SecurityWPA        = "wpa"        // WPA1-PSK, seen in scans
	SecurityWPA2       = "wpa2"       // WPA2-PSK
	SecurityWPA3       = "wpa3"       // WPA3-SAE
	SecurityTransition = "wpa2/wpa3"  // WPA2-PSK and WPA3-SAE on one SSID
	SecurityEnterprise = "enterprise" // 802.1X, seen in scans only
	SecurityOWE        = "owe"        // enhanced open, seen in scans
)

// Network is one saved network, [[wifi.network]], or the network of
// a connect request.
type Network struct {
	SSID string `toml:"ssid" json:"ssid"`
	// PSK is the passphrase (8 to 63 printable ASCII characters) or the
	// raw key as 64 hex digits; empty for an open network.
	PSK string `toml:"psk" json:"psk,omitempty" secret:"true"`
	// Security is "open", "wpa2", "wpa3" or "wpa2/wpa3"; empty: what the
	// scan shows, else told by the PSK (none: open; a passphrase:
	// wpa2/wpa3; hex: wpa2).
	Security string `toml:"security" json:"security,omitempty"`
	// Hidden networks do not broadcast their SSID: they are probed by name.
	Hidden bool `toml:"hidden" json:"hidden,omitempty"`
	// Priority orders the saved networks: the highest in range is joined.
	Priority int `toml:"priority" json:"priority,omitempty"`
}

// ErrInvalid is wrapped by every validation error of Wi-Fi input.
var ErrInvalid = errors.New("invalid Wi-Fi settings")

// FieldError is a problem with one field of Wi-Fi input. Its two
// methods are the config package's key contract: the key is relative to
// the [wifi] table ("network[0].psk"), the message does not repeat it.
type FieldError struct {
	Key string
	Msg string
}

// Error is the message alone.
func (e *FieldError) Error() string { return e.Msg }

// ConfigKey is the key relative to the [wifi] table.
func (e *FieldError) ConfigKey() string { return e.Key }

// Is makes every field error match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Validate checks the [wifi] table itself: the interface and that no
// SSID is saved twice. Each network's own rules are Network.Validate,
// which the config file's walk calls on every element; ValidateAll runs
// both. Every problem is a *FieldError, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	if c.Interface != "" {
		if msg := names.LinkNameProblem(c.Interface); msg != "" {
			errs = append(errs, &FieldError{"interface", msg})
		}
	}
	seen := map[string]int{}
	for i, n := range c.Networks {
		if j, ok := seen[n.SSID]; ok && n.SSID != "" {
			errs = append(errs, &FieldError{fmt.Sprintf("network[%d].ssid", i), fmt.Sprintf("%q is also network[%d]", n.SSID, j)})
		} else {
			seen[n.SSID] = i
		}
	}
	return errors.Join(errs...)
}

// ValidateAll is Validate and every network's own rules.
func (c Config) ValidateAll() error {
	errs := []error{c.Validate()}
	for i, n := range c.Networks {
		for _, e := range n.problems() {
			e.Key = fmt.Sprintf("network[%d].%s", i, e.Key)
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// Validate checks one network: every problem as a *FieldError naming
// its field ("psk"), joined; nil when it can be joined. errors.As finds
// the first.
func (n Network) Validate() error {
	var errs []error
	for _, p := range n.problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

func (n Network) problems() []*FieldError {
	var ps []*FieldError
	add := func(key, format string, args ...any) {
		ps = append(ps, &FieldError{key, fmt.Sprintf(format, args...)})
	}
	switch l := len(n.SSID); {
	case l == 0:
		add("ssid", "missing: an SSID is 1 to 32 bytes")
	case l > 32:
		add("ssid", "%q is %d bytes long; an SSID is 1 to 32 bytes", n.SSID, l)
	}
	if msg := PSKProblem(n.PSK); msg != "" {
		add("psk", "%s", msg)
	}
	switch n.Security {
	case "", SecurityTransition, SecurityWPA2:
	case SecurityOpen:
		if n.PSK != "" {
			add("psk", "an open network takes no psk")
		}
	case SecurityWPA3:
		if isHexKey(n.PSK) {
			add("psk", "WPA3-SAE needs the passphrase, not a 64-digit hex key")
		}
	default:
		add("security", "%q is not one of %q, %q, %q, %q", n.Security, SecurityOpen, SecurityWPA2, SecurityWPA3, SecurityTransition)
	}
	if (n.Security == SecurityWPA2 || n.Security == SecurityWPA3 || n.Security == SecurityTransition) && n.PSK == "" {
		add("psk", "missing: security %q needs a psk", n.Security)
	}
	if n.Priority < 0 || n.Priority > 1000 {
		add("priority", "%d is out of range 0..1000", n.Priority)
	}
	return ps
}

// PSKProblem says what is wrong with a pre-shared key, or "". An empty
// key is an open network: not a problem here.
func PSKProblem(psk string) string {
	switch l := len(psk); {
	case l == 0 || isHexKey(psk):
		return ""
	case l == 64:
		return "64 characters must all be hex digits (a raw key); a passphrase has 8 to 63"
	case l < 8:
		return fmt.Sprintf("%d characters is too short: a passphrase has 8 to 63", utf8.RuneCountInString(psk))
	case l > 64:
		return fmt.Sprintf("%d characters is too long: a passphrase has 8 to 63", utf8.RuneCountInString(psk))
	}
	for _, r := range psk {
		if r < 0x20 || r > 0x7e {
			return "a passphrase holds printable ASCII characters only"
		}
	}
	return ""
}

func isHexKey(psk string) bool {
	if len(psk) != 64 {
		return false
	}
	_, err := hex.DecodeString(psk)
	return err == nil
}
