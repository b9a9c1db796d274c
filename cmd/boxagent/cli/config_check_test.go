package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckAsServe: config check passed files that serve or the
// first apply then refused: an unknown board id, a firmware key file that
// is not there, a gateway outside the uplink's subnet. It makes serve's
// checks now.
func TestConfigCheckAsServe(t *testing.T) {
	requireProcesses(t)
	root := t.TempDir()
	dir := t.TempDir()
	cases := []struct{ name, body, want string }{
		{"unknown board", "board = \"no-such-board\"\n", "board: "},
		{"missing key file", "[firmware]\nkeys = [\"" + filepath.Join(dir, "missing.x509.pem") + "\"]\n", "firmware.keys: "},
		{"gateway outside the subnet", "[[network.uplink]]\nparent = \"eth1\"\n[network.uplink.ipv4]\nmethod = \"static\"\naddress = \"192.0.2.10/24\"\ngateway = \"198.51.100.1\"\n",
			"198.51.100.1 is outside the uplink's subnet 192.0.2.0/24"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
			if err := os.WriteFile(f, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, stderr, code := runCLI(t, "config", "check", "--root", root, f)
			if code != 1 || !strings.Contains(out, c.want) {
				t.Errorf("config check: exit %d\n%s%s\nwant exit 1 and %q", code, out, stderr, c.want)
			}
		})
	}
	f := filepath.Join(dir, "good.toml")
	os.WriteFile(f, []byte("[[network.uplink]]\nparent = \"eth1\"\n[network.uplink.ipv4]\nmethod = \"static\"\naddress = \"192.0.2.10/24\"\ngateway = \"192.0.2.1\"\n"), 0o600)
	if out, stderr, code := runCLI(t, "config", "check", "--root", root, f); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("config check of a good file: exit %d\n%s%s", code, out, stderr)
	}
}
