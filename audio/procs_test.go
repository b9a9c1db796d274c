package audio

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunningAndPipeWire(t *testing.T) {
	proc := t.TempDir()
	for pid, comm := range map[string]string{"1": "systemd", "42": "pulseaudio", "77": "pipewire-pulse", "self": "x"} {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm+"\n"), 0o644)
	}
	if got := Running(proc, "pulseaudio", "bluetoothd"); len(got) != 1 || got[0] != "pulseaudio" {
		t.Errorf("Running = %v", got)
	}
	if !PipeWire(proc) {
		t.Error("pipewire-pulse not found")
	}
	os.RemoveAll(filepath.Join(proc, "77"))
	if PipeWire(proc) || Running(filepath.Join(proc, "nope")) != nil {
		t.Error("PipeWire found where there is none")
	}
}
