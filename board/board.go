// Package board knows the boards boxagent runs on. A board profile is
// data: one TOML file per board, embedded in the binary (profiles/), plus
// any the integrator drops into /etc/boxagent/boards. Detect picks the
// profile of this box from the device tree or DMI, reading them through an
// fs.FS rooted at the host root, so tests hand it a fstest.MapFS.
package board

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/boxagent/boxagent/internal/names"
)

// Profile describes one board: what identifies it and the defaults other
// packages take from it.
type Profile struct {
	ID   string `toml:"id" json:"id"`
	Name string `toml:"name" json:"name"`
	// Arch is the board's GOARCH: arm, arm64, amd64, riscv64 or mipsle.
	Arch  string `toml:"arch" json:"arch"`
	Match Match  `toml:"match" json:"match,omitzero"`

	// Uplink is the default wired interface, WiFi the default wireless
	// one, BluetoothAdapter the default HCI adapter ("hci0"); empty when
	// the board has none.
	Uplink           string `toml:"uplink" json:"uplink,omitempty"`
	WiFi             string `toml:"wifi" json:"wifi,omitempty"`
	BluetoothAdapter string `toml:"bluetooth_adapter" json:"bluetooth_adapter,omitempty"`

	// Firmware is how the board's recovery takes an update: the [firmware]
	// table. A profile without it says nothing of recovery (generic ones).
	Firmware Firmware `toml:"firmware" json:"firmware,omitzero"`

	// Source is "builtin" or the path of the file the profile came from.
	Source string `toml:"-" json:"source"`
}

// Match holds the rules that identify a board. A rule with several
// entries matches when any of them does.
type Match struct {
	// Model entries are substrings of /proc/device-tree/model.
	Model []string `toml:"model" json:"model,omitempty"`
	// Compatible entries are compared whole with the entries of
	// /proc/device-tree/compatible.
	Compatible []string `toml:"compatible" json:"compatible,omitempty"`
	// DMIProduct and DMIBoard are compared whole with
	// /sys/class/dmi/id/product_name and board_name. When both are given,
	// both must match.
	DMIProduct []string `toml:"dmi_product" json:"dmi_product,omitempty"`
	DMIBoard   []string `toml:"dmi_board" json:"dmi_board,omitempty"`
}

// IsZero reports a profile without rules: generic, or chosen only when the
// config names it.
func (m Match) IsZero() bool {
	return len(m.Model) == 0 && len(m.Compatible) == 0 && len(m.DMIProduct) == 0 && len(m.DMIBoard) == 0
}

// GenericPrefix starts the id of a generic profile, the fallback for its
// architecture when no rules match.
const GenericPrefix = "generic-"

// Generic reports a fallback profile for its architecture.
func (p Profile) Generic() bool { return strings.HasPrefix(p.ID, GenericPrefix) }

// Arches are the architectures a profile may name.
var Arches = []string{"arm", "arm64", "amd64", "riscv64", "mipsle"}

// ValidID reports whether s can be a profile id: lowercase ASCII
// letters, digits, '-' and '_', at least one, the first and the last a
// letter or a digit ("rpi4", "generic-arm"). The config's board key and
// a provision file's take the same ids.
func ValidID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		inner := i > 0 && i < len(s)-1
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || inner && (c == '-' || c == '_')) {
			return false
		}
	}
	return s != ""
}

// InvalidError is a profile field that breaks a rule.
type InvalidError struct {
	ID    string
	Field string // the TOML key: "arch", "match.model[1]"
	Msg   string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("board profile %q: %s: %s", e.ID, e.Field, e.Msg)
}

// Validate checks every field and returns all problems, each an
// *InvalidError, joined.
func (p Profile) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &InvalidError{ID: p.ID, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !ValidID(p.ID) {
		bad("id", "%q is not lowercase letters, digits, '-' and '_'", p.ID)
	}
	if strings.TrimSpace(p.Name) == "" {
		bad("name", "missing")
	}
	if !slices.Contains(Arches, p.Arch) {
		bad("arch", "%q is not one of %s", p.Arch, strings.Join(Arches, ", "))
	}
	if p.Generic() && !p.Match.IsZero() {
		bad("match", "a generic profile has no match rules")
	}
	for _, rule := range []struct {
		key     string
		entries []string
	}{
		{"match.model", p.Match.Model},
		{"match.compatible", p.Match.Compatible},
		{"match.dmi_product", p.Match.DMIProduct},
		{"match.dmi_board", p.Match.DMIBoard},
	} {
		for i, e := range rule.entries {
			if strings.TrimSpace(e) != e || e == "" {
				bad(fmt.Sprintf("%s[%d]", rule.key, i), "%q is empty or has surrounding spaces", e)
			}
		}
	}
	for _, iface := range []struct{ key, name string }{{"uplink", p.Uplink}, {"wifi", p.WiFi}} {
		if iface.name != "" && !validIfname(iface.name) {
			bad(iface.key, "%q is not a network interface name", iface.name)
		}
	}
	if p.BluetoothAdapter != "" && !names.BluetoothAdapter(p.BluetoothAdapter) {
		bad("bluetooth_adapter", "%q is not an adapter name like hci0", p.BluetoothAdapter)
	}
	p.Firmware.validate(bad)
	return errors.Join(errs...)
}

// validIfname follows the kernel's dev_valid_name: 1 to 15 bytes, not "."
// or "..", no '/', ':' or white space.
func validIfname(s string) bool {
	if len(s) == 0 || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\r\v\f")
}

// Find returns the profile with the given id.
func Find(profiles []Profile, id string) (Profile, bool) {
	i := slices.IndexFunc(profiles, func(p Profile) bool { return p.ID == id })
	if i < 0 {
		return Profile{}, false
	}
	return profiles[i], true
}

// IDs lists the ids of profiles, in order.
func IDs(profiles []Profile) []string {
	ids := make([]string, len(profiles))
	for i, p := range profiles {
		ids[i] = p.ID
	}
	return ids
}
