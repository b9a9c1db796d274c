package bluetooth

import (
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// ParseAddress checks a Bluetooth device address (six hex octets separated
// by colons, e.g. 00:1B:66:AA:BB:CC) and returns it in BlueZ's upper-case
// form. Dashes are accepted as separators too.
func ParseAddress(s string) (string, error) {
	a := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", ":"))
	if len(a) != 17 {
		return "", fmt.Errorf("%w: %q is not a Bluetooth address like 00:1B:66:AA:BB:CC", ErrInvalidAddress, s)
	}
	for i := 0; i < 17; i++ {
		c := a[i]
		if i%3 == 2 {
			if c != ':' {
				return "", fmt.Errorf("%w: %q is not a Bluetooth address like 00:1B:66:AA:BB:CC", ErrInvalidAddress, s)
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("%w: %q is not a Bluetooth address like 00:1B:66:AA:BB:CC", ErrInvalidAddress, s)
		}
	}
	return a, nil
}

// devicePath is where BlueZ puts a device of an adapter.
func devicePath(adapter dbus.ObjectPath, address string) dbus.ObjectPath {
	return adapter + "/dev_" + dbus.ObjectPath(strings.ReplaceAll(address, ":", "_"))
}

// addressFromPath reads the address out of a device path
// (/org/bluez/hci0/dev_00_AA_01_01_00_01), for devices not in the model.
func addressFromPath(p dbus.ObjectPath) string {
	s := string(p)
	i := strings.LastIndex(s, "/dev_")
	if i < 0 {
		return ""
	}
	a := strings.ReplaceAll(s[i+5:], "_", ":")
	if j := strings.Index(a, "/"); j >= 0 {
		a = a[:j]
	}
	if _, err := ParseAddress(a); err != nil {
		return ""
	}
	return a
}

// adapterName is the last element of an adapter's path: "hci0".
func adapterName(p dbus.ObjectPath) string {
	s := string(p)
	return s[strings.LastIndex(s, "/")+1:]
}
