// Package names checks names that two domain packages both take and
// neither may import from the other (board profiles and the bluetooth
// table both name an adapter; network and wifi both name links).
package names

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// BluetoothAdapter reports whether s is a BlueZ adapter's name: "hci"
// and 1 to 3 ASCII digits (hci0, hci12).
func BluetoothAdapter(s string) bool {
	n, ok := strings.CutPrefix(s, "hci")
	return ok && len(n) >= 1 && len(n) <= 3 && strings.Trim(n, "0123456789") == ""
}

// Unprintable reports whether a name holds what would cut it short in
// the kernel (NUL) or act on a terminal rather than show (control and
// format characters, bytes that are not UTF-8).
func Unprintable(name string) bool {
	return !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) })
}
