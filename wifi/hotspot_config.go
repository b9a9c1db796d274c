package wifi

import (
	"fmt"
	"time"
)

// SetupAfter is [wifi] setup_after: how long the agent waits, from
// the moment it drives the interface, for a known network to join
// before it opens the setup hotspot. A Go duration ("2m", "90s"); "0"
// or absent: never by itself (boxagent wifi setup start still opens
// it).
type SetupAfter string

// Bounds of setup_after: shorter than a join takes is a hotspot that
// fights the saved networks; longer than a day is a typo.
const (
	MinSetupAfter = 5 * time.Second
	MaxSetupAfter = 24 * time.Hour
)

// Duration is the wait, 0 for never. An invalid value (which Validate
// refuses) is never too.
func (s SetupAfter) Duration() time.Duration {
	d, err := s.parse()
	if err != nil {
		return 0
	}
	return d
}

func (s SetupAfter) parse() (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	return time.ParseDuration(string(s))
}

// Validate is called by the config file's walk at the key's own line.
func (s SetupAfter) Validate() error {
	d, err := s.parse()
	switch {
	case err != nil:
		return &FieldError{"", fmt.Sprintf("%q is not a duration: write it like \"2m\" or \"90s\", or \"0\" for never", string(s))}
	case d == 0:
		return nil
	case d < 0:
		return &FieldError{"", fmt.Sprintf("%q is negative; \"0\" is never", string(s))}
	case d < MinSetupAfter || d > MaxSetupAfter:
		return &FieldError{"", fmt.Sprintf("%s is out of range %s..%s (or \"0\" for never)", d, MinSetupAfter, MaxSetupAfter)}
	}
	return nil
}
