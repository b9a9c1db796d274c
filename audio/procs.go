package audio

import (
	"os"
	"path/filepath"
	"strings"
)

// Running finds processes by name (their comm) under procDir ("/proc").
// It returns the names found; a procDir that cannot be read finds nothing.
func Running(procDir string, names ...string) []string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var found []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "comm"))
		if err != nil {
			continue
		}
		comm := strings.TrimSpace(string(b))
		if want[comm] && !seen[comm] {
			seen[comm] = true
			found = append(found, comm)
		}
	}
	return found
}

// PipeWire says whether PipeWire's PulseAudio replacement runs: then
// the agent drives PipeWire through it (PipeWireClient), as there is no
// PulseAudio D-Bus protocol to use.
func PipeWire(procDir string) bool {
	return len(Running(procDir, "pipewire-pulse")) > 0
}
