package fleet

import (
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// wildcardsCheck is blankWildcards against the expression it replaced,
// each match replaced with "{}".
var wildcardsCheck = matchtest.Check{Expr: `\{[^}]*\}`, Replace: blankWildcards, Repl: func(string) string { return "{}" }}

func TestBlankWildcards(t *testing.T) {
	matchtest.Table(t, blankWildcards, map[string]string{
		"GET /api/v1/wifi/{ssid}/connect": "GET /api/v1/wifi/{}/connect", "DELETE /api/v1/a/{x}/{y}": "DELETE /api/v1/a/{}/{}",
		"GET /api/v1/{a{b}c}": "GET /api/v1/{}c}", "GET /api/v1/{}": "GET /api/v1/{}", "GET /api/v1/{open": "GET /api/v1/{open",
		"}{x\n}{": "}{}{", "": "",
	})
	wildcardsCheck.Agree(t, matchtest.All("{}a/", 6), matchtest.Near("{}\né\xff", "GET /api/v1/wifi/{ssid}/connect"))
}

func FuzzBlankWildcards(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "GET /api/v1/wifi/{ssid}/connect", "{a{b}c}", "}{", "{é\xff}"}, wildcardsCheck)
}
