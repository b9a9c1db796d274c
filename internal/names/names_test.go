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
