// Package names checks names that two domain packages both take and
// neither may import from the other (board profiles and the bluetooth
// table both name an adapter).
package names

import "strings"

// BluetoothAdapter reports whether s is a BlueZ adapter's name: "hci"
// and 1 to 3 ASCII digits (hci0, hci12).
func BluetoothAdapter(s string) bool {
	n, ok := strings.CutPrefix(s, "hci")
	return ok && len(n) >= 1 && len(n) <= 3 && strings.Trim(n, "0123456789") == ""
}
