package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/audio"
)

// TestErrorCodes: every row of the error table is reached by its own
// error (no row above takes it), with its domain's code prefix, and
// an error of no domain is left to the server ("internal").
func TestErrorCodes(t *testing.T) {
	tables := map[string]errorCodes{
		"config.": configCodes, "bluetooth.": bluetoothCodes, "wifi.": wifiCodes,
		"audio.": audioCodes, "network.": networkCodes, "fw.": firmwareCodes,
	}
	for prefix, table := range tables {
		for _, row := range table {
			err := fmt.Errorf("cannot do it: %w", row.Err)
			if prefix == "audio." {
				err = &audio.Error{Op: "do it", Kind: row.Err}
			}
			e := mapError(err)
			if e == nil || e.Status != row.Status || !strings.HasPrefix(e.Code, prefix) {
				t.Errorf("%v: %+v, want %d %s", row.Err, e, row.Status, row.Code)
				continue
			}
			if e.Code != row.Code {
				// A row above took the error: fine only when it says the same.
				t.Errorf("%v is answered %s by an earlier row, not %s", row.Err, e.Code, row.Code)
			}
		}
	}
	if e := mapError(fmt.Errorf("cannot do it")); e != nil {
		t.Errorf("a foreign error mapped: %+v", e)
	}
}
