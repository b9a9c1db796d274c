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

// TestLinkNameProblem: what network's uplinks and wifi's interface both
// refuse, as the kernel's dev_valid_name does, and the message each
// shows.
func TestLinkNameProblem(t *testing.T) {
	const (
		long    = ` bytes long; Linux allows at most 15`
		space   = ` holds '/', ':' or a space`
		unprint = ` holds a NUL, a control character or bytes that are not printable text`
	)
	matchtest.Table(t, LinkNameProblem, map[string]string{
		"": "", "eth0": "", "wlan0": "", "wlan0-scan": "", "eth0.100": "", "uplink-iptv": "", "up_link@1": "",
		"fifteen-bytes15": "", "上网": "", "...": "", ".x": "",

		"sixteen-bytes-16":    `link name "sixteen-bytes-16" is 16` + long,
		"enx001122334455.100": `link name "enx001122334455.100" is 19` + long,
		"上网上网上网":              `link name "上网上网上网" is 18` + long,
		".":                   `"." is not a valid link name`,
		"..":                  `".." is not a valid link name`,
		"a b":                 `link name "a b"` + space,
		"eth0/1":              `link name "eth0/1"` + space,
		"eth0:1":              `link name "eth0:1"` + space,
		"eth0\t":              `link name "eth0\t"` + space,
		"eth0\n":              `link name "eth0\n"` + space,
		"a\u00a0b":            `link name "a\u00a0b"` + space,
		"up\x00link":          `link name "up\x00link"` + unprint,
		"up\x1b[2J":           `link name "up\x1b[2J"` + unprint,
		"eth\xff":             `link name "eth\xff"` + unprint,
		"a\u200bb":            `link name "a\u200bb"` + unprint,
	})
}
