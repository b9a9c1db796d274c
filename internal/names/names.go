// Package names checks names that two domain packages both take and
// neither may import from the other (board profiles and the bluetooth
// table both name an adapter; network and wifi both name links).
package names

import (
	"fmt"
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

// LinkNameProblem says what the kernel would refuse in a link name
// (dev_valid_name: at most 15 bytes, not "." or "..", no '/', ':' or
// space), or what would not show on a console (Unprintable); "" for a
// good one. An empty name is the caller's to refuse or to read as
// "none": "" has no problem here.
func LinkNameProblem(name string) string {
	switch {
	case len(name) > 15:
		return fmt.Sprintf("link name %q is %d bytes long; Linux allows at most 15", name, len(name))
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid link name", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }):
		return fmt.Sprintf("link name %q holds '/', ':' or a space", name)
	case Unprintable(name):
		return fmt.Sprintf("link name %q holds a NUL, a control character or bytes that are not printable text", name)
	}
	return ""
}
