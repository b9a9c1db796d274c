package config

import (
	"strings"
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// mismatchSubmatch is mismatchType as FindStringSubmatch answers: the
// whole match and the type.
func mismatchSubmatch(msg string) []string {
	if typ, ok := mismatchType(msg); ok {
		return []string{"cannot decode TOML " + typ + " into ", typ}
	}
	return nil
}

// The matchers against the expressions they replaced.
var (
	fleetNameCheck  = matchtest.Check{Expr: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`, Match: ValidFleetName}
	fleetRouteCheck = matchtest.Check{Expr: `^(GET|POST|DELETE) /api/v1/[A-Za-z0-9_./{}-]+$`, Match: validFleetRoute}
	mismatchCheck   = matchtest.Check{Expr: `^cannot decode TOML (\S+(?: table)?) into `, Submatch: mismatchSubmatch}
	definedCheck    = matchtest.Check{Expr: `^key .* is already defined$`, Match: definedTwice}
)

func TestValidFleetName(t *testing.T) {
	long := strings.Repeat("a", 64)
	matchtest.Table(t, ValidFleetName, map[string]bool{
		"box-01": true, "a": true, "Z": true, "9": true, "a.b_c-d": true, long: true,
		"": false, long + "a": false, ".a": false, "_a": false, "-a": false, "a/b": false, "a+": false, "#": false,
		"a b": false, "a\n": false, "é": false,
	})
	fleetNameCheck.Agree(t, matchtest.All("aZ09_.-/+\n", 4), matchtest.Near("a_.-/ \né\xff", "box-01", long[:63], long, long+"a"))
}

func TestValidFleetRoute(t *testing.T) {
	matchtest.Table(t, validFleetRoute, map[string]bool{
		"GET /api/v1/status": true, "POST /api/v1/wifi/{ssid}/connect": true, "DELETE /api/v1/a.b_c-d": true,
		"GET /api/v1/": false, "PUT /api/v1/x": false, "get /api/v1/x": false, "GET  /api/v1/x": false,
		"GET /api/v2/x": false, "GET /api/v1/x y": false, "GET /api/v1/x?y": false, "GET /api/v1/x\n": false,
		"GET /api/v1/é": false, "GET": false, "": false,
	})
	fleetRouteCheck.Agree(t, matchtest.Near("GETa/{}. -\n\xff", matchtest.Near("?_", "GET /api/v1/x", "POST /api/v1/{a}", "DELETE /api/v1/")...))
}

func TestMismatchType(t *testing.T) {
	into := func(typ string) []string { return []string{"cannot decode TOML " + typ + " into ", typ} }
	matchtest.Table(t, mismatchSubmatch, map[string][]string{
		"cannot decode TOML string into struct field config.Journal.Keep of type int": into("string"),
		"cannot decode TOML inline table into a slice":                                into("inline table"), "cannot decode TOML table into x": into("table"),
		"cannot decode TOML  into x": nil, "cannot decode TOML string": nil, "cannot decode TOML string\tinto x": nil,
		"cannot decode TOML inline tables into x": nil, "toml: cannot decode TOML string into x": nil,
	})
	mismatchCheck.Agree(t, matchtest.Near(" \t\nxé\xff", matchtest.Near("ta", "cannot decode TOML string into ", "cannot decode TOML a table into ")...))
}

func TestDefinedTwice(t *testing.T) {
	matchtest.Table(t, definedTwice, map[string]bool{
		"key a is already defined": true, "key  is already defined": true, "key a.b.\"c d\" is already defined": true,
		"key is already defined": false, "key a is already defined\n": false, "key a\nb is already defined": false,
		"Key a is already defined": false, "key a is already defined twice": false, "": false,
	})
	definedCheck.Agree(t, matchtest.Near(" \n\rké\xff", matchtest.Near("\n", "key  is already defined", "key a is already defined")...))
}

func FuzzMatchers(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "box-01", "GET /api/v1/x", "cannot decode TOML inline table into x", "key a is already defined"},
		fleetNameCheck, fleetRouteCheck, mismatchCheck, definedCheck)
}
