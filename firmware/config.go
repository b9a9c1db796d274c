package firmware

import (
	"errors"
	"fmt"
	"path"
)

// Config is the [firmware] table of the agent's config file.
type Config struct {
	// Keys are the certificates (signapk) or public keys (minisign,
	// ed25519) packages for this box must be signed with, as absolute
	// paths. They add to the board profile's keys.
	Keys []string `toml:"keys" json:"keys,omitempty"`
	// KeepArtifacts is how many packages the store keeps (the staged one
	// and the one before it are always kept); 0 means DefaultKeep.
	KeepArtifacts int `toml:"keep_artifacts" json:"keep_artifacts,omitempty"`
	// Mounter is how sticks are mounted: auto, systemd or direct
	// (ChooseMounter); "" is auto.
	Mounter string `toml:"mounter" json:"mounter,omitempty"`
}

// Bounds of keep_artifacts.
const (
	DefaultKeep = 3
	MaxKeep     = 100
)

// ConfigError is a problem at a key of the [firmware] table.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return e.Msg }

// ConfigKey is the key relative to the [firmware] table.
func (e *ConfigError) ConfigKey() string { return e.Key }

// Validate checks the table; the key files themselves are read when the
// policy is built (NewPolicy), so a missing file is reported there.
func (c Config) Validate() error {
	var errs []error
	for i, k := range c.Keys {
		if !path.IsAbs(k) || path.Clean(k) != k {
			errs = append(errs, &ConfigError{fmt.Sprintf("keys[%d]", i), fmt.Sprintf("%q is not a clean absolute path", k)})
		}
	}
	if c.KeepArtifacts < 0 || c.KeepArtifacts > MaxKeep {
		errs = append(errs, &ConfigError{"keep_artifacts", fmt.Sprintf("%d is out of range 0..%d", c.KeepArtifacts, MaxKeep)})
	}
	if err := validMounter(c.Mounter); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Keep is the number of artifacts to keep.
func (c Config) Keep() int {
	if c.KeepArtifacts == 0 {
		return DefaultKeep
	}
	return c.KeepArtifacts
}
