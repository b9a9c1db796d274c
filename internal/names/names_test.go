package names

import (
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// adapterCheck is BluetoothAdapter against the expression it replaced.
var adapterCheck = matchtest.Check{Expr: `^hci[0-9]{1,3}$`, Match: BluetoothAdapter}

func TestBluetoothAdapter(t *testing.T) {
	matchtest.Table(t, BluetoothAdapter, map[string]bool{
		"hci0": true, "hci9": true, "hci12": true, "hci999": true, "hci007": true,
		"": false, "hci": false, "hci1234": false, "HCI0": false, "hci-1": false, "hcia": false,
		" hci0": false, "hci0 ": false, "hci0\n": false, "xhci0": false, "hci٣": false,
	})
	adapterCheck.Agree(t, matchtest.All("hci09H \n", 6), matchtest.Near("09aI \n٣\xff", "hci0", "hci123", "hci1234"))
}

func FuzzBluetoothAdapter(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "hci0", "hci123", "hci1234", "hci0\n", "hcix"}, adapterCheck)
}

func TestUnprintable(t *testing.T) {
	// A space prints: the link-name checks refuse it themselves.
	for _, name := range []string{"eth0", "wlan0", "uplink-iptv", "café", "上网", "a b", ""} {
		if Unprintable(name) {
			t.Errorf("Unprintable(%q) = true", name)
		}
	}
	for _, name := range []string{
		"eth\x000", "eth0\n", "\tx", "\x1b[31m", "\x7f", // NUL and control characters
		"a\u200bb", "a\u202eb", // format characters: zero-width space, right-to-left override
		"\xff", "caf\xe9", // not UTF-8
	} {
		if !Unprintable(name) {
			t.Errorf("Unprintable(%q) = false", name)
		}
	}
}
