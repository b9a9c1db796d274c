package bluetooth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/boxagent/boxagent/internal/names"
)

// Config is the [bluetooth] table of the config file. Zero values mean the
// defaults (see the accessors), so a file without the table is valid.
type Config struct {
	// Adapter is the controller boxagent drives, e.g. "hci0"; empty means
	// the first one BlueZ lists.
	Adapter string `toml:"adapter" json:"adapter,omitempty"`
	// PairingPIN answers legacy (pre-2.1) headsets' PIN requests; default
	// "0000".
	PairingPIN string `toml:"pairing_pin" json:"pairing_pin,omitempty" secret:"true"`
	// Capability is the agent's IO capability; default NoInputNoOutput.
	Capability string `toml:"capability" json:"capability,omitempty"`
	// PairingWindow is how long `bt pairable on` accepts pairing, in
	// seconds; default 180.
	PairingWindow int `toml:"pairing_window" json:"pairing_window,omitempty"`
	// DefaultMode is the mode a newly paired headset is saved with
	// ([[bluetooth.headset]] mode): "music" or "call"; default music.
	DefaultMode string `toml:"default_mode" json:"default_mode,omitempty"`
	// Headsets are the known headsets, in order of preference.
	Headsets []Headset `toml:"headset" json:"headset,omitempty"`
}

// Headset is one [[bluetooth.headset]].
type Headset struct {
	Address string `toml:"address" json:"address"`
	Name    string `toml:"name" json:"name,omitempty"`
	// AutoConnect: connect at start, when it reappears, and after link loss.
	AutoConnect bool `toml:"auto_connect" json:"auto_connect"`
	// Mode is "music" (A2DP) or "call" (HFP/HSP); default music. The audio
	// domain applies it.
	Mode string `toml:"mode" json:"mode,omitempty"`
}

// Agent IO capabilities BlueZ accepts.
var Capabilities = []string{"NoInputNoOutput", "DisplayOnly", "DisplayYesNo", "KeyboardOnly", "KeyboardDisplay"}

// Headset modes.
const (
	ModeMusic = "music"
	ModeCall  = "call"
)

// Defaults.
const (
	DefaultPIN           = "0000"
	DefaultCapability    = "NoInputNoOutput"
	DefaultPairingWindow = 180 * time.Second
)

// PIN is the configured PIN or the default.
func (c Config) PIN() string {
	if c.PairingPIN == "" {
		return DefaultPIN
	}
	return c.PairingPIN
}

// AgentCapability is the configured capability or the default.
func (c Config) AgentCapability() string {
	if c.Capability == "" {
		return DefaultCapability
	}
	return c.Capability
}

// NewHeadsetMode is the mode a newly paired headset gets: DefaultMode or
// music.
func (c Config) NewHeadsetMode() string {
	if c.DefaultMode == "" {
		return ModeMusic
	}
	return c.DefaultMode
}

// Window is how long a pairing window opened by the user stays open.
func (c Config) Window() time.Duration {
	if c.PairingWindow <= 0 {
		return DefaultPairingWindow
	}
	return time.Duration(c.PairingWindow) * time.Second
}

// FieldError is a problem at one key of the table; the config package
// reports it at that key and line (it finds ConfigKey by its method).
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string     { return e.Msg }
func (e *FieldError) ConfigKey() string { return e.Key }

// validPIN reports whether s can be a pairing PIN: 4 to 16 ASCII
// digits.
func validPIN(s string) bool {
	return len(s) >= 4 && len(s) <= 16 && strings.Trim(s, "0123456789") == ""
}

// Validate checks the table; every problem is reported with its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Adapter != "" && !names.BluetoothAdapter(c.Adapter) {
		bad("adapter", "%q is not an adapter name like hci0", c.Adapter)
	}
	if c.PairingPIN != "" && !validPIN(c.PairingPIN) {
		// The message does not repeat the value: it is a secret.
		bad("pairing_pin", "want 4 to 16 digits")
	}
	if c.Capability != "" {
		ok := false
		for _, k := range Capabilities {
			ok = ok || k == c.Capability
		}
		if !ok {
			bad("capability", "%q is not one of %s", c.Capability, strings.Join(Capabilities, ", "))
		}
	}
	if c.PairingWindow < 0 || c.PairingWindow > 3600 {
		bad("pairing_window", "%d is out of range 0..3600 seconds", c.PairingWindow)
	}
	if c.DefaultMode != "" && c.DefaultMode != ModeMusic && c.DefaultMode != ModeCall {
		bad("default_mode", "%q is neither %q (A2DP) nor %q (HFP/HSP)", c.DefaultMode, ModeMusic, ModeCall)
	}
	seen := map[string]int{}
	for i, h := range c.Headsets {
		key := fmt.Sprintf("headset[%d]", i)
		a, err := ParseAddress(h.Address)
		switch {
		case h.Address == "":
			bad(key+".address", "missing: every headset needs its address, like 00:1B:66:AA:BB:CC")
		case err != nil:
			bad(key+".address", "%q is not a Bluetooth address like 00:1B:66:AA:BB:CC", h.Address)
		default:
			if j, dup := seen[a]; dup {
				bad(key+".address", "%s is already headset[%d]", a, j)
			}
			seen[a] = i
		}
		if h.Mode != "" && h.Mode != ModeMusic && h.Mode != ModeCall {
			bad(key+".mode", "%q is neither %q (A2DP) nor %q (HFP/HSP)", h.Mode, ModeMusic, ModeCall)
		}
	}
	return errors.Join(errs...)
}

// Headset finds a configured headset by its normalised address.
func (c Config) Headset(address string) (Headset, bool) {
	for _, h := range c.Headsets {
		if a, err := ParseAddress(h.Address); err == nil && a == address {
			return h, true
		}
	}
	return Headset{}, false
}
