package audio

import (
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// Kinds of failure; test with errors.Is.
var (
	// ErrNotFound: no such card, profile, sink, source or port.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a value PulseAudio or boxagent refuses (a volume out of
	// range, a mode that is not music, call or off…).
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: the profile exists but is not available (the
	// headset has not connected it), or the card offers no such mode.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnreachable: the sound server (PulseAudio's D-Bus module,
	// pipewire-pulse's native socket) does not answer.
	ErrUnreachable = errors.New("the sound server is not reachable")
	// ErrClosed: the connection to the sound server is gone.
	ErrClosed = errors.New("the connection to the sound server is closed")
)

// Error is a failed audio operation. It keeps PulseAudio's own words: the
// D-Bus error name (org.PulseAudio.Core1.NotFoundError) and message.
type Error struct {
	Op   string // what was attempted: "set the profile of card X to Y"
	Kind error  // one of the Err… values above, or nil
	Name string // the D-Bus error name, when PulseAudio answered one
	Msg  string // PulseAudio's message, or boxagent's reason
	Hint string // a one-line fix, when there is one
}

func (e *Error) Error() string {
	s := "cannot " + e.Op
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Name != "" {
		s += " (" + e.Name + ")"
	}
	return s
}

// Unwrap lets errors.Is find the kind.
func (e *Error) Unwrap() error { return e.Kind }

// HintOf returns an error's hint, if it has one.
func HintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

// D-Bus error names PulseAudio answers with.
const (
	errNameNotFound    = "org.PulseAudio.Core1.NotFoundError"
	errNameNoSuchProp  = "org.PulseAudio.Core1.NoSuchPropertyError"
	errNameInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs"
	errNameUnknownObj  = "org.freedesktop.DBus.Error.UnknownObject"
	errNameUnknownMeth = "org.freedesktop.DBus.Error.UnknownMethod"
	errNameAccess      = "org.freedesktop.DBus.Error.AccessDenied"
	errNameNoReply     = "org.freedesktop.DBus.Error.NoReply"
)

// wrap turns a D-Bus call's error into an *Error for op.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var de dbus.Error
	var dep *dbus.Error
	if errors.As(err, &dep) {
		de = *dep
	} else if !errors.As(err, &de) {
		if errors.Is(err, dbus.ErrClosed) {
			return &Error{Op: op, Kind: ErrClosed, Msg: err.Error(), Hint: "is PulseAudio running? systemctl status pulseaudio"}
		}
		return &Error{Op: op, Msg: err.Error()}
	}
	e := &Error{Op: op, Name: de.Name}
	if len(de.Body) > 0 {
		if s, ok := de.Body[0].(string); ok {
			e.Msg = s
		}
	}
	switch de.Name {
	case errNameNotFound, errNameUnknownObj:
		e.Kind = ErrNotFound
	case errNameInvalidArgs, errNameNoSuchProp:
		e.Kind = ErrInvalid
	case errNameNoReply:
		e.Kind = ErrUnreachable
	}
	if e.Msg == "" {
		e.Msg = fmt.Sprint(de.Body...)
	}
	return e
}
