package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeSocketNotASocket: serve --socket PATH removed whatever was at
// PATH to bind its socket there, a regular file too (serve --socket
// /etc/shadow as a typo, or from a unit edited by mistake). It removes only
// a socket now, and refuses anything else.
func TestServeSocketNotASocket(t *testing.T) {
	requireProcesses(t)
	root := t.TempDir()
	victim := filepath.Join(t.TempDir(), "precious.conf")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, path := range []string{victim, dir} {
		_, stderr, code := runCLI(t, "serve", "--root", root, "--listen", "127.0.0.1:0", "--socket", path)
		if code == 0 || !strings.Contains(stderr, "not a socket") {
			t.Errorf("serve --socket %s: exit %d\n%s", path, code, stderr)
		}
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != "keep me\n" {
		t.Errorf("the file at --socket is gone or changed: %q, %v", data, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the directory at --socket is gone: %v", err)
	}
}
