package bluetooth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// Kinds of failure. An *Error wraps one of them, so callers test with
// errors.Is and still see BlueZ's own words in the message.
var (
	ErrInvalidAddress = errors.New("invalid Bluetooth address")
	// ErrAbsent: bluetoothd (org.bluez) is not on the system bus.
	ErrAbsent = errors.New("bluetoothd is not running")
	// ErrNoAdapter: no Bluetooth controller, or not the configured one.
	ErrNoAdapter = errors.New("no Bluetooth adapter")
	// ErrAdapterOff: the adapter is powered off (org.bluez.Error.NotReady).
	ErrAdapterOff = errors.New("the Bluetooth adapter is powered off")
	// ErrNotFound: BlueZ does not know the device (org.bluez.Error.DoesNotExist).
	ErrNotFound = errors.New("unknown device")
	// ErrAuthFailed: pairing failed or was refused by either side
	// (AuthenticationFailed, AuthenticationRejected, AuthenticationCanceled,
	// AuthenticationTimeout, Rejected, Canceled).
	ErrAuthFailed = errors.New("pairing failed")
	// ErrInProgress: another operation on the same device or adapter runs.
	ErrInProgress = errors.New("operation already in progress")
	// ErrAlreadyExists: already paired (org.bluez.Error.AlreadyExists).
	ErrAlreadyExists = errors.New("already paired")
	// ErrAlreadyConnected: org.bluez.Error.AlreadyConnected.
	ErrAlreadyConnected = errors.New("already connected")
	// ErrNotConnected: org.bluez.Error.NotConnected.
	ErrNotConnected = errors.New("not connected")
	// ErrUnreachable: page timeout, the headset is off or out of range
	// (ConnectionAttemptFailed, br-connection-page-timeout, …).
	ErrUnreachable = errors.New("the headset is off or out of range")
	// ErrNoAudioService: the device has no profile BlueZ can connect,
	// usually because no audio service (PulseAudio) registered endpoints
	// (br-connection-profile-unavailable).
	ErrNoAudioService = errors.New("no audio service is running")
	// ErrTimeout: the call did not answer in time.
	ErrTimeout = errors.New("timed out")
	// ErrNotSupported: org.bluez.Error.NotSupported / NotAvailable.
	ErrNotSupported = errors.New("not supported")
	// ErrFailed is any other BlueZ failure.
	ErrFailed = errors.New("bluetooth operation failed")
)

// Error is a failed operation: what was tried, on what, BlueZ's error name
// and message, and the kind (one of the Err values) for errors.Is.
type Error struct {
	Op      string // "pair", "connect", "power on", …
	Address string // device or adapter, may be empty
	Name    string // D-Bus error name, e.g. org.bluez.Error.AuthenticationFailed
	Msg     string // BlueZ's message, e.g. "Authentication Failed"
	Kind    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("cannot ")
	b.WriteString(e.Op)
	if e.Address != "" {
		b.WriteString(" ")
		b.WriteString(e.Address)
	}
	b.WriteString(": ")
	switch {
	case e.Name != "" && e.Msg != "":
		fmt.Fprintf(&b, "%s (%s)", e.Msg, e.Name)
	case e.Name != "":
		b.WriteString(e.Name)
	case e.Msg != "":
		b.WriteString(e.Msg)
	default:
		b.WriteString(e.Kind.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Kind }

// Hint is a one-line suggestion for a person, or "".
func (e *Error) Hint() string { return Hint(e.Kind) }

// Hint suggests what to do about an error of one of the kinds above.
func Hint(err error) string {
	switch {
	case errors.Is(err, ErrInvalidAddress):
		return "an address looks like 00:1B:66:AA:BB:CC"
	case errors.Is(err, ErrAbsent):
		return "systemctl start bluetooth; boxagent doctor checks the system bus"
	case errors.Is(err, ErrNoAdapter):
		return "check [bluetooth] adapter in the config; boxagent bt adapters lists them"
	case errors.Is(err, ErrAdapterOff):
		return "power the adapter on (rfkill unblock bluetooth if it is blocked)"
	case errors.Is(err, ErrNotFound):
		return "put the headset in pairing mode and run boxagent bt scan first"
	case errors.Is(err, ErrAuthFailed):
		return "put the headset in pairing mode (hold its power button until the light flashes), then pair again"
	case errors.Is(err, ErrUnreachable):
		return "switch the headset on and bring it within range"
	case errors.Is(err, ErrNoAudioService):
		return "start the audio service (PulseAudio with module-bluetooth-discover); boxagent doctor checks it"
	case errors.Is(err, ErrTimeout):
		return "bluetoothd or the headset did not answer in time; check the headset is on and in pairing mode, then try again"
	case errors.Is(err, ErrInProgress):
		return "wait for the running operation to finish"
	}
	return ""
}

// callError turns an error of a D-Bus call into an *Error.
func callError(op, address string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Address: address, Kind: ErrFailed}
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &dep):
		de = *dep
	case errors.As(err, &de):
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind, e.Msg = ErrTimeout, "no answer from bluetoothd in time"
		return e
	case errors.Is(err, context.Canceled):
		return err
	default:
		e.Msg = err.Error()
		return e
	}
	e.Name = de.Name
	if len(de.Body) > 0 {
		if s, ok := de.Body[0].(string); ok {
			e.Msg = s
		}
	}
	e.Kind = classify(de.Name, e.Msg)
	return e
}

// classify maps BlueZ's error name (and, for org.bluez.Error.Failed, its
// message: BlueZ ≥ 5.64 puts the reason there) to a kind.
func classify(name, msg string) error {
	m := strings.ToLower(msg)
	if name == "org.freedesktop.DBus.Error.NoReply" && strings.Contains(m, "recipient disconnected") {
		return ErrAbsent // bluetoothd left the bus during the call: it died
	}
	switch name {
	case "org.bluez.Error.AuthenticationFailed", "org.bluez.Error.AuthenticationRejected",
		"org.bluez.Error.AuthenticationCanceled", "org.bluez.Error.AuthenticationTimeout",
		"org.bluez.Error.Rejected", "org.bluez.Error.Canceled":
		return ErrAuthFailed
	case "org.bluez.Error.InProgress", "org.bluez.Error.Busy":
		return ErrInProgress
	case "org.bluez.Error.AlreadyExists":
		return ErrAlreadyExists
	case "org.bluez.Error.AlreadyConnected":
		return ErrAlreadyConnected
	case "org.bluez.Error.NotConnected":
		return ErrNotConnected
	case "org.bluez.Error.DoesNotExist", "org.freedesktop.DBus.Error.UnknownObject":
		return ErrNotFound
	case "org.bluez.Error.NotReady":
		return ErrAdapterOff
	case "org.bluez.Error.ConnectionAttemptFailed":
		return ErrUnreachable
	case "org.bluez.Error.NotSupported", "org.bluez.Error.NotAvailable":
		return ErrNotSupported
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		return ErrAbsent
	case "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.TimedOut":
		return ErrTimeout
	}
	switch {
	case strings.Contains(m, "profile-unavailable"):
		return ErrNoAudioService
	case strings.Contains(m, "page-timeout"), strings.Contains(m, "page timeout"),
		strings.Contains(m, "host is down"):
		return ErrUnreachable
	case strings.Contains(m, "in progress"), strings.Contains(m, "busy"):
		return ErrInProgress
	}
	return ErrFailed
}
