package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestWiFiSetupUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"setup"}, 2, "takes one of start, stop, status"},
		{[]string{"setup", "open"}, 2, `unknown wifi setup verb "open"`},
		{[]string{"setup", "start", "now"}, 2, "takes one of"},
		{[]string{"setup", "start", "--socket", missing}, 3, "not reachable"},
		{[]string{"setup", "status", "--socket", missing}, 3, "not reachable"},
	} {
		_, stderr, code := runWiFi(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.stderr)
		}
	}
}
