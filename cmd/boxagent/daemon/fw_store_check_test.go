package daemon

import (
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/firmware"
)

func TestStoreCheck(t *testing.T) {
	sha := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name    string
		damaged []firmware.Damaged
		want    string
		detail  []string
	}{
		{"none", nil, apitype.CheckOK, []string{"no damaged entry"}},
		{"this run", []firmware.Damaged{{SHA256: sha, Reason: "damaged artifact metadata: x", MovedTo: "/s/damaged/x"}},
			apitype.CheckWarn, []string{"1 damaged entries", "aaaaaaaaaaaa moved to /s/damaged/x", "(damaged artifact metadata: x)"}},
		{"an earlier run", []firmware.Damaged{{SHA256: sha, MovedTo: "/s/damaged/y"}},
			apitype.CheckWarn, []string{"aaaaaaaaaaaa moved to /s/damaged/y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := storeCheck(tc.damaged)
			if c.Result != tc.want {
				t.Errorf("result %s, want %s", c.Result, tc.want)
			}
			for _, d := range tc.detail {
				if !strings.Contains(c.Detail, d) {
					t.Errorf("detail %q lacks %q", c.Detail, d)
				}
			}
			if c.Result != apitype.CheckOK && c.Fix == "" {
				t.Error("a warning without a fix")
			}
		})
	}
}
