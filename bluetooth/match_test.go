package bluetooth

import (
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// pinCheck is validPIN against the expression it replaced.
var pinCheck = matchtest.Check{Expr: `^[0-9]{4,16}$`, Match: validPIN}

func TestValidPIN(t *testing.T) {
	matchtest.Table(t, validPIN, map[string]bool{
		"0000": true, "1234": true, "0123456789012345": true,
		"": false, "123": false, "01234567890123456": false, "12a4": false, "1234\n": false,
		" 1234": false, "-1234": false, "12٣4": false, "１２３４": false,
	})
	pinCheck.Agree(t, matchtest.All("09a\n", 6), matchtest.Near("09a \n٣\xff", "0000", "0123456789012345", "01234567890123456"))
}

func FuzzValidPIN(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "123", "1234", "0123456789012345", "01234567890123456", "1234\n"}, pinCheck)
}
