package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

// startTestPulse starts a real pulseaudio with null sinks "one" and "two",
// the native protocol and module-dbus-protocol in a fresh short folder,
// and returns the [audio] config that reaches it.
func startTestPulse(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("pulseaudio"); err != nil {
		t.Skip("pulseaudio is not installed")
	}
	dir, err := os.MkdirTemp("", "pa") // socket paths stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	startTestPulseIn(t, dir)
	return "[audio]\nserver = \"unix:path=" + filepath.Join(dir, "run", "pulse", "dbus-socket") + "\"\nnative = \"unix:" + filepath.Join(dir, "native") + "\"\n"
}

// pulseExtra adds script lines and environment to a test PulseAudio
// (the Bluetooth page test loads module-bluetooth-discover on a private
// bus).
type pulseExtra struct {
	script string
	env    []string
}

// startTestPulseIn starts PulseAudio in dir and returns a function that
// kills it (also called at cleanup).
func startTestPulseIn(t *testing.T, dir string, extra ...pulseExtra) (stop func()) {
	t.Helper()
	for _, d := range []string{"home", "run"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	native := filepath.Join(dir, "native")
	script := "load-module module-null-sink sink_name=one\nload-module module-null-sink sink_name=two\n" +
		"load-module module-native-protocol-unix socket=" + native + " auth-anonymous=1\nload-module module-dbus-protocol\n"
	var env []string
	for _, x := range extra {
		script += x.script
		env = append(env, x.env...)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.pa"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
		"--log-target=stderr", "--log-level=info", "-F", filepath.Join(dir, "test.pa"))
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:", "DISPLAY=")
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	t.Cleanup(stop)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "Daemon startup complete") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatal("pulseaudio exited before it was ready")
	case <-time.After(20 * time.Second):
		t.Fatal("pulseaudio not ready within 20 s")
	}
	return stop
}

// pulseDir is a short folder for a test PulseAudio the test starts itself
// (startTestPulseIn), removed at the end.
func pulseDir(t *testing.T) string {
	t.Helper()
	requireProcesses(t)
	if _, err := exec.LookPath("pulseaudio"); err != nil {
		t.Skip("pulseaudio is not installed")
	}
	dir, err := os.MkdirTemp("", "pa") // socket paths stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestAudioReconnect: PulseAudio restarts under a running agent; the
// agent says audio is gone, then reconnects by itself.
func TestAudioReconnect(t *testing.T) {
	dir := pulseDir(t)
	stop := startTestPulseIn(t, dir)
	root := t.TempDir()
	writeConfig(t, root, "[audio]\nserver = \"unix:path="+filepath.Join(dir, "run", "pulse", "dbus-socket")+"\"\n")
	p := startAgent(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := make(chan string, 16)
	// Replay from the start: nothing published before the stream opens
	// is missed.
	go p.client().EventsSince(ctx, 0, func(ev apitype.Event) error {
		if ev.Type == "audio" {
			var e audio.Event
			json.Unmarshal(ev.Data, &e)
			events <- e.Kind
		}
		return nil
	})
	wait := func(kind string) {
		t.Helper()
		for {
			select {
			case k := <-events:
				if k == kind {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no audio %s event", kind)
			}
		}
	}
	start := time.Now()
	stop()
	wait("disconnected")
	if out, _, _ := p.run("status"); !strings.Contains(out, "audio:      absent") {
		t.Errorf("status after PulseAudio stopped:\n%s", out)
	}
	startTestPulseIn(t, dir)
	wait("connected")
	t.Logf("reconnected %s after PulseAudio was killed", time.Since(start).Round(time.Millisecond))
	if out, _, _ := p.run("status"); !strings.Contains(out, "audio:      ok") {
		t.Errorf("status after PulseAudio restarted:\n%s", out)
	}
}

// TestAudioAppearsLater: a sound server that starts long after the agent
// is reached when it makes its socket, not at a retry: after its first
// quick retries (1, 2, 5, 10 s) the agent waits for the socket alone
// (audio.SocketWatch), with no timer. Before, it retried every 30 s
// forever, scanning /proc each time: its next try after this test's start
// of PulseAudio came 29 s later, well past the guard.
func TestAudioAppearsLater(t *testing.T) {
	dir := pulseDir(t)
	root := t.TempDir()
	// The folder of the socket does not exist yet: the agent watches the
	// nearest one that does.
	writeConfig(t, root, "[audio]\nserver = \"unix:path="+filepath.Join(dir, "run", "pulse", "dbus-socket")+"\"\n")
	p := startAgent(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connected := make(chan struct{})
	go p.client().EventsSince(ctx, 0, func(ev apitype.Event) error {
		var e audio.Event
		if ev.Type == "audio" && json.Unmarshal(ev.Data, &e) == nil && e.Kind == "connected" {
			close(connected)
			return context.Canceled
		}
		return nil
	})
	// Past the quick retries (1+2+5+10 s after the first try).
	time.Sleep(19 * time.Second)
	start := time.Now()
	startTestPulseIn(t, dir)
	select {
	case <-connected:
		t.Logf("reached %s after PulseAudio was ready", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second): // a guard: the socket's event comes at once (0.1 s here)
		t.Fatal("the agent did not reach a PulseAudio that started after its retries")
	}
	if out, _, _ := p.run("status"); !strings.Contains(out, "audio:      ok") {
		t.Errorf("status:\n%s", out)
	}
}

// TestAudioCLI drives the real CLI against the real daemon and a real
// PulseAudio: show, default, volume, mute, mode errors, the
// play-and-record test, and what status says.
func TestAudioCLI(t *testing.T) {
	requireProcesses(t)
	root := t.TempDir()
	writeConfig(t, root, startTestPulse(t))
	p := startAgent(t, root)

	out, _, code := p.run("status")
	if code != 0 || !strings.Contains(out, "audio:      ok: PulseAudio") || !strings.Contains(out, "2 sinks") {
		t.Errorf("status does not show the audio subsystem ok:\n%s", out)
	}
	out, _, code = p.run("audio", "show", "--json")
	var s audio.State
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || len(s.Sinks) != 2 || s.FallbackSink != "one" {
		t.Fatalf("audio show --json: %d\n%s", code, out)
	}
	if out, errb, code := p.run("audio", "default", "sink", "two"); code != 0 || !strings.Contains(out, "default sink: two") {
		t.Errorf("audio default: %d %s %s", code, out, errb)
	}
	if out, errb, code := p.run("audio", "volume", "one", "50%"); code != 0 || !strings.Contains(out, "one: volume 50% (-18.06 dB)") {
		t.Errorf("audio volume: %d %s %s", code, out, errb)
	}
	if out, errb, code := p.run("audio", "mute", "two", "on"); code != 0 || !strings.Contains(out, "muted") {
		t.Errorf("audio mute: %d %s %s", code, out, errb)
	}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"audio", "volume", "one", "200"}, 2, "not a percentage from 0 to 150"},
		{[]string{"audio", "volume", "nope", "20"}, 1, "(audio.not_found)"},
		{[]string{"audio", "mode", "00:11:22:33:44:55", "music"}, 1, "bluez_card.00_11_22_33_44_55"},
		{[]string{"audio", "default", "speaker", "one"}, 2, "sink or source"},
		{[]string{"audio", "mute", "one", "maybe"}, 2, "on or off"},
	} {
		if _, errb, code := p.run(c.args...); code != c.code || !strings.Contains(errb, c.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb, c.code, c.stderr)
		}
	}
	// Sink two is muted: its monitor records silence, and the test says so.
	out, errb, code := p.run("audio", "test", "--seconds", "1", "--sink", "two", "--source", "two.monitor")
	if code != 1 || !strings.Contains(out, "SILENT") {
		t.Errorf("audio test on a muted sink: %d\n%s\n%s", code, out, errb)
	}
	if _, errb, code := p.run("audio", "mute", "two", "off"); code != 0 {
		t.Fatalf("unmute: %s", errb)
	}
	out, errb, code = p.run("audio", "test", "--seconds", "1", "--sink", "two", "--source", "two.monitor")
	if code != 0 || !strings.Contains(out, "sound recorded") || !strings.Contains(out, "440 Hz") {
		t.Errorf("audio test: %d\n%s\n%s", code, out, errb)
	}
	t.Logf("audio test:\n%s", out)
	out, _, _ = p.run("history", "-n", "10")
	for _, k := range []string{"audio.test", "audio.volume", "audio.default"} {
		if !strings.Contains(out, k) {
			t.Errorf("history has no %s:\n%s", k, out)
		}
	}
}
