package wpabus

// D-Bus errors in words: wpa_supplicant's, and any other service's.

import (
	"errors"

	"github.com/godbus/dbus/v5"
)

// ErrorName is the D-Bus error name of err, or "".
func ErrorName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dp *dbus.Error
	if errors.As(err, &dp) {
		return dp.Name
	}
	return ""
}

// ErrorText is a D-Bus error as "message (name)"; another error as
// its Error().
func ErrorText(err error) string {
	var de dbus.Error
	if !errors.As(err, &de) {
		var dp *dbus.Error
		if !errors.As(err, &dp) {
			return err.Error()
		}
		de = *dp
	}
	msg := ""
	if len(de.Body) > 0 {
		msg, _ = de.Body[0].(string)
	}
	if msg == "" {
		return de.Name
	}
	return msg + " (" + de.Name + ")"
}
