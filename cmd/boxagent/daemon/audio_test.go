package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

func TestMapAudioError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&audio.Error{Op: "make x the default sink", Kind: audio.ErrNotFound, Name: "org.PulseAudio.Core1.NotFoundError", Msg: "x: No such sink."}, http.StatusNotFound, "audio.not_found"},
		{fmt.Errorf("wrapped: %w", &audio.Error{Op: "set", Kind: audio.ErrInvalid}), http.StatusBadRequest, "audio.invalid"},
		{&audio.Error{Op: "switch", Kind: audio.ErrUnavailable, Hint: "connect the headset"}, http.StatusConflict, "audio.unavailable"},
		{&audio.Error{Op: "reach", Kind: audio.ErrUnreachable}, http.StatusServiceUnavailable, "audio.unreachable"},
		{&audio.Error{Op: "call", Kind: audio.ErrClosed}, http.StatusServiceUnavailable, "audio.unreachable"},
		{&audio.Error{Op: "odd"}, http.StatusBadGateway, "audio.failed"},
	} {
		e := mapAudioError(c.err)
		if e == nil || e.Status != c.status || e.Code != c.code {
			t.Errorf("%v: %+v, want %d %s", c.err, e, c.status, c.code)
		}
	}
	e := mapAudioError(&audio.Error{Op: "make x the default sink", Kind: audio.ErrNotFound, Name: "org.PulseAudio.Core1.NotFoundError", Msg: "x: No such sink."})
	if !strings.Contains(e.Message, "org.PulseAudio.Core1.NotFoundError") || !strings.Contains(e.Message, "No such sink.") {
		t.Errorf("PulseAudio's words lost: %q", e.Message)
	}
	if mapAudioError(errors.New("not audio's")) != nil {
		t.Error("a foreign error was mapped")
	}
}

// TestVoiceProfileThroughBluetooth: audio reaches BlueZ through the
// Bluetooth domain the agent wires in, which says why when Bluetooth is
// not up rather than opening a bus of its own.
func TestVoiceProfileThroughBluetooth(t *testing.T) {
	a := &agent{paths: paths.Paths{Root: t.TempDir()}, log: slog.New(slog.DiscardHandler)}
	var bt *btDomain
	var snd *audioDomain
	for _, d := range a.buildDomains() {
		switch d := d.(type) {
		case *btDomain:
			bt = d
		case *audioDomain:
			snd = d
		}
	}
	if bt == nil || snd == nil {
		t.Fatalf("domains: Bluetooth %v, audio %v", bt != nil, snd != nil)
	}
	if snd.bt != bt {
		t.Fatalf("audio's Bluetooth is %p, the Bluetooth domain %p", snd.bt, bt)
	}
	err := bt.ConnectProfile(t.Context(), "00:AA:01:01:00:01", "0000111e-0000-1000-8000-00805f9b34fb")
	var ae *apitype.Error
	if !errors.As(err, &ae) || ae.Code != "bluetooth.absent" {
		t.Errorf("without Bluetooth: %v", err)
	}
}

func TestCheckAudioWithoutPulseAudio(t *testing.T) {
	host := t.TempDir()
	a := &agent{paths: paths.Paths{Root: t.TempDir(), HostRoot: host}}
	proc := filepath.Join(host, "proc")
	comm := func(pid, name string) {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(name+"\n"), 0o644)
	}
	comm("1", "systemd")
	if cs := a.checkAudio(t.Context()); len(cs) != 1 || cs[0].Result != apitype.CheckWarn || !strings.Contains(cs[0].Detail, "not running") {
		t.Errorf("nothing running: %+v", cs)
	}
	comm("40", "pulseaudio")
	cs := a.checkAudio(t.Context())
	if len(cs) != 2 || cs[1].Name != "module-dbus-protocol" || cs[1].Result != apitype.CheckFail || !strings.Contains(cs[1].Fix, "load-module module-dbus-protocol") {
		t.Errorf("PulseAudio without its D-Bus protocol: %+v", cs)
	}
	comm("41", "pipewire-pulse")
	cs = a.checkAudio(t.Context())
	if len(cs) != 2 || cs[0].Name != "pipewire-pulse" || cs[0].Result != apitype.CheckFail || !strings.Contains(cs[0].Detail, "PipeWire") || cs[0].Fix == "" {
		t.Errorf("PipeWire unreachable: %+v", cs)
	}
	if cs[1].Name != "wireplumber" || cs[1].Result != apitype.CheckWarn || !strings.Contains(cs[1].Fix, "libspa-0.2-bluetooth") {
		t.Errorf("PipeWire without WirePlumber: %+v", cs[1])
	}
	comm("42", "wireplumber")
	if cs := a.checkAudio(t.Context()); len(cs) != 2 || cs[1].Result != apitype.CheckOK {
		t.Errorf("PipeWire with WirePlumber: %+v", cs)
	}
}
