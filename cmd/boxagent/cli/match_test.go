package cli

import (
	"strings"
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// optionDashCheck is optionDashes against what it replaced: the
// expression and the function roffText gave ReplaceAllStringFunc.
var optionDashCheck = matchtest.Check{Expr: `(^|[\s\[(|'"=])-+`, Replace: optionDashes, Repl: func(m string) string {
	dashes := strings.TrimLeft(m, "\t\n\v\f\r [(|'\"=")
	return m[:len(m)-len(dashes)] + strings.Repeat(`\-`, len(dashes))
}}

func TestOptionDashes(t *testing.T) {
	matchtest.Table(t, optionDashes, map[string]string{
		"--json": `\-\-json`, "-h, --help": `\-h, \-\-help`, "[-n name] (-x|--y) a=-1": `[\-n name] (\-x|\-\-y) a=\-1`,
		"'-q' \"--q\"\t-t\n-n\r-r\f-f": "'\\-q' \"\\-\\-q\"\t\\-t\n\\-n\r\\-r\f\\-f",
		"wi-fi re--set x- -":           `wi-fi re--set x- \-`, "a\v-b é-c .-d": "a\v-b é-c .-d", "": "",
	})
	optionDashCheck.Agree(t, matchtest.All("- a=[\n\v\t(", 5), matchtest.Near("-\" |'\r\fé\xff", "see --json, -h and wi-fi (--x)"))
}

func FuzzOptionDashes(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "--json", "-h, --help", "wi-fi", "[-n name]", "a\v-b"}, optionDashCheck)
}
