package cli_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// TestDamagedJournalStarts: a journal.db with a flipped bit in its root
// page (what a power cut on cheap flash can leave) made the old agent panic
// at start, exit 2, and crash in a loop under systemd. It now starts with a
// new journal, the old one moved aside, and status and doctor warn.
func TestDamagedJournalStarts(t *testing.T) {
	requireProcesses(t)
	root := t.TempDir()
	path := filepath.Join(root, "var/lib/boxagent/journal.db")
	s, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Begin(journal.Operation{Kind: "config.reload", Origin: journal.OriginCLI}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The newer meta page names the root page; flip a bit of its flags.
	le := binary.LittleEndian
	pageSize := int(le.Uint32(data[24:]))
	meta := data[:pageSize]
	if le.Uint64(data[pageSize+64:]) > le.Uint64(data[64:]) {
		meta = data[pageSize:]
	}
	data[int(le.Uint64(meta[32:]))*pageSize+8] ^= 0x40
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	p := startAgent(t, root)
	// The log reaches the buffer through exec's copying goroutine, maybe
	// after READY.
	if !p.stderr.waitFor("journal was damaged", 10*time.Second) {
		t.Errorf("no warning in the log:\n%s", p.stderr.String())
	}
	out, _, code := p.run("status")
	if code != 0 || !strings.Contains(out, "journal:") || !strings.Contains(out, "degraded") ||
		!strings.Contains(out, "journal.db.corrupt-") {
		t.Errorf("status (exit %d) does not warn of the damaged journal:\n%s", code, out)
	}
	out, _, _ = p.run("doctor")
	if !strings.Contains(out, "WARN  journal") {
		t.Errorf("doctor does not warn of the damaged journal:\n%s", out)
	}
	// The new journal records operations.
	out, errOut, code := p.run("config", "reload")
	if code != 0 {
		t.Fatalf("config reload on the new journal: exit %d\n%s%s", code, out, errOut)
	}
	if got := journal.Quarantined(path); len(got) != 1 {
		t.Errorf("kept damaged journals: %q, want one", got)
	}
}
