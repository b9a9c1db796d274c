package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

func TestFWProgress(t *testing.T) {
	feed := func(terminal bool, term string, json bool) string {
		var b bytes.Buffer
		e := &Env{Stderr: &b, Terminal: terminal, Getenv: func(string) string { return term }}
		p := newProgress(e, &Opts{JSON: json}, "stage")
		for done := int64(0); done <= 200; done += 2 {
			p.update(journal.Progress{Message: "writing update.zip to sda1", Done: done, Total: 200})
		}
		p.end()
		return b.String()
	}
	plain := feed(false, "xterm", false)
	lines := strings.Split(strings.TrimSpace(plain), "\n")
	if len(lines) != 21 || lines[0] != "stage: 0% writing update.zip to sda1" || lines[20] != "stage: 100% writing update.zip to sda1" {
		t.Errorf("a serial console gets a line every 5%%:\n%s", plain)
	}
	if dumb := feed(true, "dumb", false); dumb != plain {
		t.Errorf("TERM=dumb draws no bar:\n%s", dumb)
	}
	bar := feed(true, "xterm", false)
	if !strings.Contains(bar, "\r[##############################] 100% writing") || strings.Count(bar, "\n") != 1 {
		t.Errorf("a terminal gets a bar redrawn in place:\n%q", bar)
	}
	if out := feed(true, "xterm", true); out != "" {
		t.Errorf("--json draws nothing: %q", out)
	}
}
