package network

// D-Bus errors in wpa_supplicant's words.

import (
	"errors"

	"github.com/godbus/dbus/v5"
)

// dbusErrorName is the D-Bus error name of err, or "".
func dbusErrorName(err error) string {
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

// dbusMessage is a D-Bus error as "message (name)".
func dbusMessage(err error) string {
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
