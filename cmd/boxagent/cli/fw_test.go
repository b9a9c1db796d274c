package cli_test

import (
	"archive/zip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fwProfile is a board whose recovery reads update.zip from a FAT stick
// and checks only the zip structure: no keys needed.
const fwProfile = `id = "test-fw"
name = "test board with a stick recovery"
arch = "amd64"

[firmware]
method = "usb-stick"
package = "update.zip"
filesystem = "vfat"
verify = "none"
required_entries = ["META-INF/com/google/android/update-binary"]
instructions = "Hold LEFT while powering on."
`

func writeZip(t *testing.T, path string, names ...string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := zip.NewWriter(f)
	for _, n := range names {
		e, _ := w.Create(n)
		e.Write([]byte("#!/sbin/sh\n"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// fwRoot is an agent's root with the test-fw board and extra config.
func fwRoot(t *testing.T, config string) string {
	t.Helper()
	root := t.TempDir()
	writeConfig(t, root, "board = \"test-fw\"\n"+config)
	if err := os.MkdirAll(filepath.Join(root, "etc/boxagent/boards"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/boxagent/boards/test-fw.toml"), []byte(fwProfile), 0o644)
	return root
}

// TestFirmwareCLI drives fw add, list, sticks, stage, rollback against the
// daemon: what needs no stick. Staging onto a real stick is the lab's
// (firmware TestLab).
func TestFirmwareCLI(t *testing.T) {
	p := startAgent(t, fwRoot(t, "[firmware]\nkeep_artifacts = 2\n"))
	dir := t.TempDir()
	good := filepath.Join(dir, "update.zip")
	writeZip(t, good, "META-INF/com/google/android/update-binary")
	bad := filepath.Join(dir, "other.zip")
	writeZip(t, bad, "hello.txt")

	out, errOut, code := p.run("fw", "add", good)
	if code != 0 || !strings.HasPrefix(out, "added ") {
		t.Fatalf("fw add: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "import: 100%") {
		t.Errorf("fw add without a terminal prints percentage lines; stderr:\n%s", errOut)
	}
	sha := strings.Fields(out)[1]
	if _, errOut, code := p.run("fw", "add", bad); code != 1 || !strings.Contains(errOut, "fw.verify_failed") {
		t.Errorf("fw add of a package without update-binary: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := p.run("fw", "add", "http://example.com/update.zip"); code != 1 || !strings.Contains(errOut, "fw.invalid") {
		t.Errorf("fw add from outside the LAN: exit %d\n%s", code, errOut)
	}
	out, _, code = p.run("fw", "list", "--json")
	var arts []struct {
		SHA256 string `json:"sha256"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &arts) != nil || len(arts) != 1 || arts[0].SHA256 != sha {
		t.Errorf("fw list --json: exit %d\n%s", code, out)
	}
	if out, _, code := p.run("fw", "list"); code != 0 || !strings.Contains(out, sha[:16]) {
		t.Errorf("fw list: exit %d\n%s", code, out)
	}
	if out, _, code := p.run("fw", "sticks", "--json"); code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("fw sticks --json: exit %d\n%s", code, out)
	}
	if _, errOut, code := p.run("fw", "stage", sha[:10], "--device", "sdz9"); code != 1 || !strings.Contains(errOut, "fw.no_stick") {
		t.Errorf("fw stage onto a missing stick: exit %d\n%s", code, errOut)
	}
	// The SHA-256 of a refused package: not a usage error.
	if _, errOut, code := p.run("fw", "stage", "00000000"); code != 1 || !strings.Contains(errOut, "a package fw add refused is not among them") || strings.Contains(errOut, "usage:") {
		t.Errorf("fw stage of an unknown artifact: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := p.run("fw", "rollback"); code != 1 || !strings.Contains(errOut, "fw.no_previous") {
		t.Errorf("fw rollback with nothing staged: exit %d\n%s", code, errOut)
	}
	out, _, _ = p.run("history", "--kind", "fw.add")
	if !strings.Contains(out, "done") || !strings.Contains(out, "failed") {
		t.Errorf("history of fw.add:\n%s", out)
	}
	out, _, _ = p.run("status")
	if !strings.Contains(out, "1 artifacts") {
		t.Errorf("status does not count the artifact:\n%s", out)
	}
}
