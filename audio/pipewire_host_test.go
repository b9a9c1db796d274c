package audio

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPipeWire is the real PipeWire stack for one test: pipewire,
// wireplumber (it links the test's streams) and pipewire-pulse, in a
// temporary runtime folder with no session bus and no Bluetooth, so it
// touches nothing of the machine's. The virtual board runs the same stack
// with Bluetooth (deploy/vm/guest/pipewire.go).
type testPipeWire struct {
	Dir, Native string
	env         []string
	pulse       *exec.Cmd
}

func startPipeWire(t *testing.T) *testPipeWire {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real PipeWire; skipped with -short")
	}
	for _, p := range []string{"pipewire", "wireplumber", "pipewire-pulse", "pactl"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (apt-get install pipewire pipewire-pulse wireplumber pulseaudio-utils)", p)
		}
	}
	// Socket paths must stay under 108 bytes: t.TempDir is too deep.
	dir, err := os.MkdirTemp("", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"run/pulse", "cfg/wireplumber/main.lua.d", "cfg/wireplumber/bluetooth.lua.d", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// No session bus: WirePlumber exits unless reservation and the portal
	// are off; no Bluetooth here.
	for name, body := range map[string]string{
		"main.lua.d/51-test.lua":      "alsa_monitor.enabled = false\nalsa_monitor.properties[\"alsa.reserve\"] = false\ndefault_access.properties[\"enable-flatpak-portal\"] = false\n",
		"bluetooth.lua.d/51-test.lua": "bluez_monitor.enabled = false\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, "cfg/wireplumber", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &testPipeWire{Dir: dir, Native: "unix:" + filepath.Join(dir, "run", "pulse", "native")}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DBUS_") && !strings.HasPrefix(e, "XDG_") && !strings.HasPrefix(e, "PULSE_") {
			p.env = append(p.env, e)
		}
	}
	p.env = append(p.env, "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"), "XDG_CONFIG_HOME="+filepath.Join(dir, "cfg"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"), "HOME="+filepath.Join(dir, "home"), "DISPLAY=",
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path="+filepath.Join(dir, "no-bus"), "PIPEWIRE_LOG_SYSTEMD=false", "PULSE_SERVER="+p.Native)
	start := func(name, ready string) *exec.Cmd {
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		cmd := exec.Command(name)
		cmd.Env, cmd.Stdout, cmd.Stderr = p.env, log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("cannot start %s: %v", name, err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		})
		if ready == "" {
			return cmd
		}
		// A guard for the socket to appear; the daemons say nothing
		// more precise.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(ready); err == nil {
				return cmd
			}
			select {
			case <-done:
				b, _ := os.ReadFile(log.Name())
				t.Fatalf("%s exited before it was ready:\n%s", name, b)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(log.Name())
				t.Fatalf("%s not ready within 20 s:\n%s", name, b)
			}
		}
	}
	start("pipewire", filepath.Join(dir, "run", "pipewire-0"))
	start("wireplumber", "")
	p.pulse = start("pipewire-pulse", filepath.Join(dir, "run", "pulse", "native"))
	return p
}

func (p *testPipeWire) pactl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("pactl", args...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pactl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPipeWireHost drives the real pipewire-pulse as the agent does: found
// by the locator, its sinks followed by events (pactl loads and unloads
// them behind the client's back), volume, mute and the default sink set
// and seen back from the server, the play-and-record test through a null
// sink's monitor, and the end of the connection when pipewire-pulse dies.
func TestPipeWireHost(t *testing.T) {
	p := startPipeWire(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := Locator{Config: Config{Native: p.Native}, Getenv: func(string) string { return "" }, RunDir: p.Dir}
	c, srv, err := ConnectPipeWire(ctx, l.NativeCandidates(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.State()
	t.Logf("reached %+v: %+v", srv, s.Server)
	if srv.Native != p.Native || srv.How != "config" || s.Server.Backend != BackendPipeWire || !strings.Contains(s.Server.Name, "PipeWire") {
		t.Errorf("server %+v, state's %+v", srv, s.Server)
	}
	ev, unsub := c.Subscribe()
	defer unsub()
	mod := p.pactl(t, "load-module", "module-null-sink", "sink_name=one")
	p.pactl(t, "load-module", "module-null-sink", "sink_name=two")
	for _, n := range []string{"one", "two"} {
		waitEvent(t, ev, "sink.added "+n, func(e Event) bool { return e.Kind == "sink.added" && e.Name == n })
	}
	one, ok := c.State().Sink("one")
	if !ok || one.Monitor != "one.monitor" {
		t.Fatalf("sink one: %+v (%v); sinks %s", one, ok, names(c.State().Sinks))
	}

	if _, err := c.SetVolume(ctx, "one", 40); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "device.volume 40 %", func(e Event) bool {
		v, ok := e.Value.(Volume)
		return e.Kind == "device.volume" && e.Name == "one" && ok && v.Percent == 40
	})
	if got := p.pactl(t, "get-sink-volume", "one"); !strings.Contains(got, "40%") {
		t.Errorf("pactl says %q, want 40%%", got)
	}
	if err := c.SetMute(ctx, "one", true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "device.mute", func(e Event) bool { return e.Kind == "device.mute" && e.Name == "one" && e.Value == true })
	if _, err := c.SetVolume(ctx, "one", 200); !errors.Is(err, ErrInvalid) {
		t.Errorf("200 %%: %v, want ErrInvalid", err)
	}

	if err := c.SetFallback(ctx, "sink", "two"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "fallback_sink two", func(e Event) bool { return e.Kind == "fallback_sink" && e.Value == "two" })
	if got := p.pactl(t, "get-default-sink"); got != "two" {
		t.Errorf("pactl's default sink %q, want two", got)
	}
	if err := c.SetFallback(ctx, "sink", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown sink as default: %v, want ErrNotFound", err)
	}
	if _, err := c.SetMode(ctx, "bluez_card.00_AA_01_01_00_01", ModeMusic); !errors.Is(err, ErrNotFound) {
		t.Errorf("mode of a card that is not there: %v, want ErrNotFound", err)
	}

	if _, err := c.SetVolume(ctx, "one", 100); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMute(ctx, "one", false); err != nil {
		t.Fatal(err)
	}
	r, err := PlayRecord(ctx, TestOptions{Native: srv.Native, Play: true, Sink: "one", Source: "one.monitor", Seconds: 1})
	if err != nil {
		t.Fatalf("play-and-record: %v", err)
	}
	t.Logf("tone into one, its monitor: %+v", r.Recorded)
	if r.Recorded.Silent() || r.Recorded.FrequencyHz < 430 || r.Recorded.FrequencyHz > 450 {
		t.Errorf("recorded %+v, want the 440 Hz tone", r.Recorded)
	}

	p.pactl(t, "unload-module", mod)
	waitEvent(t, ev, "sink.removed one", func(e Event) bool { return e.Kind == "sink.removed" && e.Name == "one" })
	if _, ok := c.State().Sink("one"); ok {
		t.Error("sink one still in the model after its removal")
	}

	syscall.Kill(-p.pulse.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not see pipewire-pulse go")
	}
	if err := c.SetMute(ctx, "two", true); !errors.Is(err, ErrClosed) {
		t.Errorf("after pipewire-pulse died: %v, want ErrClosed", err)
	}
}
