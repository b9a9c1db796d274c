package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/board"
)

// TestBoardWithoutTheAgent: board detect, show and list answer when the
// agent is not running (serve refuses to start: exactly when they are
// needed), from the embedded profiles, the root's own profiles folder and
// its config file's board; a note on stderr says so, and the exit is 0.
func TestBoardWithoutTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI as a process; skipped with -short (cross tests under qemu-user)")
	}
	root := t.TempDir()
	missing := filepath.Join(t.TempDir(), "none.sock")
	writeConfig(t, root, "board = \"generic-arm64\"\n")
	extra := filepath.Join(root, "etc/boxagent/boards")
	if err := os.MkdirAll(extra, 0o755); err != nil {
		t.Fatal(err)
	}
	var profiles []board.Profile
	out, stderr, code := runCLI(t, "board", "list", "--json", "--socket", missing, "--root", root)
	if code != 0 || !strings.Contains(stderr, "the agent is not running") {
		t.Fatalf("board list: exit %d, stderr %q", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), &profiles); err != nil || len(profiles) < 5 {
		t.Fatalf("board list: %d profiles (%v):\n%s", len(profiles), err, out)
	}

	var d board.Detection
	out, stderr, code = runCLI(t, "board", "detect", "--json", "--socket", missing, "--root", root)
	if code != 0 || !strings.Contains(stderr, "the agent is not running") {
		t.Fatalf("board detect: exit %d, stderr %q", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Profile.ID != "generic-arm64" {
		t.Errorf("board detect: %+v (%v), want the config's generic-arm64", d.Profile.ID, err)
	}

	out, _, code = runCLI(t, "board", "show", "--socket", missing, "--root", root)
	if code != 0 || !strings.Contains(out, "generic-arm64") {
		t.Errorf("board show: exit %d:\n%s", code, out)
	}

	// Other commands still need the agent.
	if _, _, code := runCLI(t, "status", "--socket", missing); code != 3 {
		t.Errorf("status without the agent: exit %d, want 3", code)
	}
}
