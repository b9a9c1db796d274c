package audio

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the [audio] table of config.toml. Its zero value is valid and
// means "find PulseAudio" (see Address).
type Config struct {
	// Server says where PulseAudio's D-Bus protocol listens: "" or "auto"
	// (PULSE_DBUS_SERVER, then the system-mode socket, then the user's
	// PulseAudio through org.PulseAudio1 on the session bus), "system",
	// "user", or a D-Bus address such as "unix:path=/run/pulse/dbus-socket".
	Server string `toml:"server,omitempty" json:"server,omitempty"`
	// Native is the native-protocol socket the record/play test streams
	// through (a path or "unix:PATH"); empty means the "native" socket
	// beside the D-Bus one, or PULSE_SERVER.
	Native string `toml:"native,omitempty" json:"native,omitempty"`
	// ModeTimeout is how long, in seconds, `mode call` waits for a headset
	// profile that exists but is not available yet (0: 10 s).
	ModeTimeout int `toml:"mode_timeout,omitempty" json:"mode_timeout,omitempty"`
}

// Server kinds.
const (
	ServerAuto   = "auto"
	ServerSystem = "system"
	ServerUser   = "user"
)

// configError names the key of [audio] it is about, for the config package.
type configError struct{ key, msg string }

func (e configError) Error() string     { return e.msg }
func (e configError) ConfigKey() string { return e.key }

// Validate checks the [audio] table.
func (c Config) Validate() error {
	var errs []error
	switch s := c.Server; {
	case s == "", s == ServerAuto, s == ServerSystem, s == ServerUser:
	case strings.HasPrefix(s, "unix:path="), strings.HasPrefix(s, "unix:abstract="), strings.HasPrefix(s, "tcp:"):
	default:
		errs = append(errs, configError{"server", fmt.Sprintf("%q is none of auto, system, user or a D-Bus address (unix:path=…)", s)})
	}
	if n := c.Native; n != "" && !strings.HasPrefix(n, "/") && !strings.HasPrefix(n, "unix:/") && !strings.HasPrefix(n, "tcp:") {
		errs = append(errs, configError{"native", fmt.Sprintf("%q is neither an absolute socket path nor unix:/PATH nor tcp:HOST:PORT", n)})
	}
	if c.ModeTimeout < 0 || c.ModeTimeout > 120 {
		errs = append(errs, configError{"mode_timeout", fmt.Sprintf("%d is out of range 0..120 seconds", c.ModeTimeout)})
	}
	return errors.Join(errs...)
}
