package cli_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestEventsJSONLines: events --json prints one event per line, each a
// whole JSON object, so `| jq -c` and line readers work on the stream.
func TestEventsJSONLines(t *testing.T) {
	p := startAgent(t, t.TempDir())
	// The global flags before the noun, as a user types them.
	cmd := boxagentCmd("--socket", p.socket, "--json", "events")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// events sends nothing until something happens, and nothing says
	// when its stream is open: reload until one reload's operation shows.
	reload := func() {
		if _, errOut, code := p.run("config", "reload"); code != 0 {
			t.Fatalf("config reload: exit %d %s", code, errOut)
		}
	}
	reload()
	again := time.NewTicker(time.Second)
	defer again.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-again.C:
			reload()
		case l, ok := <-lines:
			if !ok {
				t.Fatal("events ended before the reload's operation")
			}
			var ev struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type == "" {
				t.Fatalf("line %q is not one event object: %v", l, err)
			}
			if ev.Type == "operation" && strings.Contains(string(ev.Data), "config.reload") {
				return
			}
		case <-deadline:
			t.Fatal("no config.reload operation event within 10s")
		}
	}
}
