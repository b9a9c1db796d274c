package provision

import (
	"strings"
	"testing"

	"github.com/boxagent/boxagent/internal/matchtest"
)

// secretSubmatch is secretLine as FindStringSubmatch answers: the line
// and its four parts.
func secretSubmatch(l string) []string {
	if head, opening, value, closing, ok := secretLine(l); ok {
		return []string{l, head, opening, value, closing}
	}
	return nil
}

// The matchers against the expressions they replaced.
var (
	labelCheck  = matchtest.Check{Expr: `^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`, Match: validLabel}
	zoneCheck   = matchtest.Check{Expr: `^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`, Match: validZone}
	secretCheck = matchtest.Check{Expr: `^(\s*(?:psk|password|password_hash)\s*=\s*)(['"])(.*)(['"])\s*$`, Submatch: secretSubmatch}
)

func TestValidLabel(t *testing.T) {
	long := strings.Repeat("a", 63)
	matchtest.Table(t, validLabel, map[string]bool{
		"box": true, "Box-01": true, "a": true, "9": true, "a--b": true, long: true,
		"": false, long + "a": false, "-a": false, "a-": false, "-": false, "a_b": false, "a.b": false,
		"a\n": false, "é": false,
	})
	labelCheck.Agree(t, matchtest.All("aZ9-_.\n", 5), matchtest.Near("a-_. \né\xff", "box-01", long[:62], long, long+"a", "a"+long[:61]+"-"))
}

func TestValidZone(t *testing.T) {
	matchtest.Table(t, validZone, map[string]bool{
		"UTC": true, "Europe/Berlin": true, "Etc/GMT+1": true, "America/Argentina/Buenos_Aires": true, "a/-/+": true,
		"": false, "/UTC": false, "UTC/": false, "Europe//Berlin": false, "Europe/Berlin\n": false, "Europe Berlin": false,
		"Europe/../x": false, "Amérique": false,
	})
	zoneCheck.Agree(t, matchtest.All("aZ9_+-/.\n", 4), matchtest.Near("a/_+- .\né\xff", "Europe/Berlin", "America/Argentina/Buenos_Aires"))
}

func TestSecretLine(t *testing.T) {
	matchtest.Table(t, secretSubmatch, map[string][]string{
		`psk="hunter22"`: {`psk="hunter22"`, `psk=`, `"`, `hunter22`, `"`}, `psk=""`: {`psk=""`, `psk=`, `"`, ``, `"`},
		"  password_hash = 'x\"y' \t": {"  password_hash = 'x\"y' \t", `  password_hash = `, `'`, `x"y`, `'`},
		`password='mixed"`:            {`password='mixed"`, `password=`, `'`, `mixed`, `"`}, "\npsk=\"a\"\n": {"\npsk=\"a\"\n", "\npsk=", `"`, `a`, `"`},
		`psk="a" # comment`: nil, `psk="`: nil, `pskx="a"`: nil, `password_hashes="a"`: nil, `ssid="a"`: nil, `psk=a`: nil,
		"psk=\"a\nb\"": nil,
	})
	secretCheck.Agree(t, matchtest.Near(" \t\n\"'=", matchtest.Near("pw_a\xff", `psk="x"`, ` password = 'a"b' `, `password_hash="h"`)...))
}

func FuzzMatchers(f *testing.F) {
	matchtest.Fuzz(f, []string{"", "box-01", "Europe/Berlin", `psk="x"`, ` password_hash = 'a"b' `}, labelCheck, zoneCheck, secretCheck)
}
