// Package config reads /etc/boxagent/config.toml, the one file of desired
// state, and validates it whole: a file with any problem is refused with
// every problem found, each named by its key and line, and changes nothing.
//
// The file has one table per domain. A domain package owns the Go type of
// its table and its rules: adding a section is adding one field to Config
// whose type has a Validate() error method (see Section). The reflection
// walks here (validation, key lines, secret fingerprints) find new sections
// without further code.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// Config is the whole file.
type Config struct {
	// Board is "auto" (detect) or the id of a board profile.
	Board   string  `toml:"board" json:"board"`
	HTTP    HTTP    `toml:"http" json:"http"`
	Journal Journal `toml:"journal" json:"journal"`

	Bluetooth bluetooth.Config `toml:"bluetooth,omitempty" json:"bluetooth,omitzero"` // [bluetooth]: adapter, agent, known headsets

	Audio audio.Config `toml:"audio,omitempty" json:"audio,omitzero"` // [audio]: where PulseAudio is

	Network network.Config `toml:"network,omitempty" json:"network,omitzero"`

	// WiFi is [wifi] with the saved networks, [[wifi.network]]; nil
	// when the file has no such table.
	WiFi *wifi.Config `toml:"wifi" json:"wifi,omitempty"`

	Firmware *firmware.Config `toml:"firmware" json:"firmware,omitempty"` // [firmware]: keys, keep_artifacts; nil when absent

	// Fleet is [fleet], the link to an MQTT broker; nil (off) when absent.
	Fleet *Fleet `toml:"fleet" json:"fleet,omitempty"`
}

// Journal is the [journal] table.
type Journal struct {
	// Keep is how many of the newest operations the journal keeps.
	Keep int `toml:"keep" json:"keep"`
}

// Bounds of journal.keep.
const (
	MinKeep = 10
	MaxKeep = 1000000
)

// BoardAuto asks for board detection.
const BoardAuto = "auto"

// Default is the config in effect when a key is absent.
func Default() *Config {
	return &Config{
		Board:   BoardAuto,
		HTTP:    HTTP{Listen: "127.0.0.1:8080"},
		Journal: Journal{Keep: 1000},
	}
}

// Validate checks the top-level keys. Whether a board id is known is for
// board detection to say: extra profiles live outside this file.
func (c *Config) Validate() error {
	if c.Board != BoardAuto && !board.ValidID(c.Board) {
		return FieldErrorf("board", "%q is neither %q nor a profile id (lowercase letters, digits, '-' and '_')", c.Board, BoardAuto)
	}
	return nil
}

// Validate checks the [journal] table.
func (j Journal) Validate() error {
	if j.Keep < MinKeep || j.Keep > MaxKeep {
		return FieldErrorf("keep", "%d is out of range %d..%d", j.Keep, MinKeep, MaxKeep)
	}
	return nil
}

// Parse decodes and validates a config file. Absent keys keep their
// Default value. name is used in error messages. The error is an *Error
// for one problem or Errors for several.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	if err := parseInto(name, data, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads and parses the file at path. A missing file is an error
// wrapping fs.ErrNotExist; whether that means defaults is the caller's
// decision.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, data)
}

// parseInto decodes data into v, a pointer to a struct holding defaults,
// then validates the result whole. It is Parse for any shape of file, so
// tests can use shapes of their own.
func parseInto(name string, data []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		errs := decodeErrors(name, data, err, v)
		// Unknown keys leave the rest of the file decoded, so the values
		// can still be checked: the user sees every problem at once.
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			errs = append(errs, validateDoc(name, data, v)...)
			errs.sort()
		}
		return errs.err()
	}
	return validateDoc(name, data, v).err()
}
