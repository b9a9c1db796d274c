package board

import (
	"strings"
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// idCheck is ValidID against the expression it replaced.
var idCheck = matchtest.Check{Expr: `^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`, Match: ValidID}

func TestValidID(t *testing.T) {
	matchtest.Table(t, ValidID, map[string]bool{
		"a": true, "0": true, "rpi4": true, "generic-arm": true, "a_b": true, "a--_b": true,
		strings.Repeat("a", 300): true,
		"":                       false, "-": false, "-a": false, "a-": false, "_a": false, "a_": false, "Rpi4": false,
		"rpi 4": false, "a.b": false, "rpi4\n": false, "\nrpi4": false, "é": false, "a\xff": false,
	})
	idCheck.Agree(t, matchtest.All("az09-_A.\n", 5),
		matchtest.Near("az09-_A. \né\xff", "a", "rpi4", "generic-arm", strings.Repeat("a-", 100)+"a"))
}

func FuzzValidID(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "a", "rpi4", "generic-arm", "-a", "a_", "A", "a\n", "é"}, idCheck)
}
