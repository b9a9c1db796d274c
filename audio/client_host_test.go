package audio

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

func TestHostState(t *testing.T) {
	p := startPulse(t, "")
	c := p.connect(t)
	s := c.State()
	if s.Server.Name != "pulseaudio" || s.Server.Version == "" {
		t.Errorf("server = %+v", s.Server)
	}
	if got := names(s.Sinks); got != "[one two]" {
		t.Errorf("sinks = %s", got)
	}
	if got := names(s.Sources); got != "[one.monitor two.monitor]" {
		t.Errorf("sources = %s", got)
	}
	one, _ := s.Sink("one")
	if one.Monitor != "one.monitor" || one.Kind != "sink" || one.Volume.Percent != 100 || one.Volume.DB == nil || *one.Volume.DB != 0 {
		t.Errorf("sink one = %+v", one)
	}
	mon, _ := s.Source("one.monitor")
	if !mon.IsMonitor || mon.Monitor != "one" {
		t.Errorf("source one.monitor = %+v", mon)
	}
	if s.FallbackSink != "one" {
		t.Errorf("fallback sink = %q, want one", s.FallbackSink)
	}
	if len(s.Cards) != 0 {
		t.Errorf("cards = %+v, want none (null sinks have no card)", s.Cards)
	}
}

func TestHostFallbackVolumeMute(t *testing.T) {
	p := startPulse(t, "")
	c := p.connect(t)
	ctx := context.Background()
	ev, cancel := c.Subscribe()
	defer cancel()

	if err := c.SetFallback(ctx, "sink", "two"); err != nil {
		t.Fatal(err)
	}
	if s := c.State(); s.FallbackSink != "two" {
		t.Errorf("fallback sink after set = %q", s.FallbackSink)
	}
	waitEvent(t, ev, "fallback_sink", func(e Event) bool { return e.Kind == "fallback_sink" && e.Value == "two" })
	if err := c.SetFallback(ctx, "source", "two.monitor"); err != nil {
		t.Fatal(err)
	}
	if s := c.State(); s.FallbackSource != "two.monitor" {
		t.Errorf("fallback source = %q", s.FallbackSource)
	}

	v, err := c.SetVolume(ctx, "one", 50)
	if err != nil {
		t.Fatal(err)
	}
	if v.Percent != 50 || len(v.Channels) != 2 || v.DB == nil || *v.DB != -18.06 {
		t.Errorf("volume 50%% = %+v (dB %v)", v, *v.DB)
	}
	waitEvent(t, ev, "device.volume", func(e Event) bool { return e.Kind == "device.volume" && e.Name == "one" })
	if d, _ := c.State().Sink("one"); d.Volume.Percent != 50 {
		t.Errorf("model volume = %v", d.Volume.Percent)
	}
	if _, err := c.SetVolume(ctx, "one", 150); err != nil {
		t.Errorf("150%%: %v", err)
	}
	if _, err := c.SetVolume(ctx, "one", 151); !errors.Is(err, ErrInvalid) {
		t.Errorf("151%%: %v, want ErrInvalid", err)
	}
	if _, err := c.SetVolume(ctx, "nope", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown device: %v, want ErrNotFound", err)
	}
	if err := c.SetMute(ctx, "two.monitor", true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "device.mute", func(e Event) bool { return e.Kind == "device.mute" && e.Name == "two.monitor" && e.Value == true })
	if d, _ := c.State().Source("two.monitor"); !d.Muted {
		t.Error("two.monitor not muted in the model")
	}
}

// TestHostSignalsFromOutside changes PulseAudio through a second
// connection: the first client's model follows by signals alone.
func TestHostSignalsFromOutside(t *testing.T) {
	p := startPulse(t, "")
	c := p.connect(t)
	ev, cancel := c.Subscribe()
	defer cancel()
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	other, err := Dial(ctx, p.DBus)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	core := other.Object(destination, corePath)

	var mod dbus.ObjectPath
	err = core.CallWithContext(ctx, ifaceCore+".LoadModule", 0, "module-null-sink", map[string]string{"sink_name": "three"}).Store(&mod)
	if err != nil {
		t.Fatal(err)
	}
	// PulseAudio announces the monitor source before its sink.
	seen := map[string]bool{}
	waitEvent(t, ev, "sink.added and source.added", func(e Event) bool {
		seen[e.Kind+" "+e.Name] = true
		return seen["sink.added three"] && seen["source.added three.monitor"]
	})
	if _, ok := c.State().Sink("three"); !ok {
		t.Fatal("sink three not in the model")
	}
	var three dbus.ObjectPath
	if err := core.CallWithContext(ctx, ifaceCore+".GetSinkByName", 0, "three").Store(&three); err != nil {
		t.Fatal(err)
	}
	if err := core.CallWithContext(ctx, ifaceProps+".Set", 0, ifaceCore, "FallbackSink", dbus.MakeVariant(three)).Err; err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "fallback_sink", func(e Event) bool { return e.Kind == "fallback_sink" && e.Value == "three" })
	err = other.Object(destination, three).CallWithContext(ctx, ifaceProps+".Set", 0, ifaceDevice, "Volume", dbus.MakeVariant([]uint32{VolumeNorm / 4, VolumeNorm / 2})).Err
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "device.volume", func(e Event) bool { return e.Kind == "device.volume" && e.Name == "three" })
	d, _ := c.State().Sink("three")
	if d.Volume.Channels[0].Percent != 25 || d.Volume.Channels[1].Percent != 50 || d.Volume.Percent != 50 {
		t.Errorf("per-channel volume = %+v", d.Volume)
	}
	if err := other.Object(destination, mod).CallWithContext(ctx, "org.PulseAudio.Core1.Module.Unload", 0).Err; err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, "sink.removed", func(e Event) bool { return e.Kind == "sink.removed" && e.Name == "three" })
	if _, ok := c.State().Sink("three"); ok {
		t.Error("sink three still in the model after its module was unloaded")
	}
}

func TestHostErrors(t *testing.T) {
	p := startPulse(t, "")
	c := p.connect(t)
	ctx := context.Background()
	err := c.SetFallback(ctx, "sink", "nope")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNotFound) || e.Name != "org.PulseAudio.Core1.NotFoundError" {
		t.Errorf("unknown sink: %v, want org.PulseAudio.Core1.NotFoundError", err)
	}
	t.Logf("unknown sink: %v", err)
	if err := c.SetCardProfile(ctx, "alsa_card.nope", "off"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown card: %v", err)
	}
	if _, err := c.SetMode(ctx, "00:11:22:33:44:55", ModeCall); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "bluez_card.00_11_22_33_44_55") {
		t.Errorf("unknown headset: %v", err)
	}
	if err := c.SetFallback(ctx, "speaker", "one"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad kind: %v", err)
	}
	// The connection is still usable after PulseAudio's errors.
	if err := c.SetFallback(ctx, "sink", "two"); err != nil {
		t.Errorf("after the errors: %v", err)
	}
}

// TestHostRestart: the client sees PulseAudio go away, and a new one is
// reached again at the same address.
func TestHostRestart(t *testing.T) {
	p := startPulse(t, "")
	c := p.connect(t)
	p.stop()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after PulseAudio stopped")
	}
	if err := c.SetFallback(context.Background(), "sink", "two"); err == nil {
		t.Error("a call on a dead connection succeeded")
	}
	cands := []Server{{DBus: p.DBus, How: "test"}}
	if _, _, err := Connect(context.Background(), cands, Options{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Connect with PulseAudio down: %v, want ErrUnreachable", err)
	}
	p2 := startPulse(t, p.Dir)
	c2, srv, err := Connect(context.Background(), cands, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if srv.DBus != p2.DBus || len(c2.State().Sinks) != 2 {
		t.Errorf("after restart: %+v, %d sinks", srv, len(c2.State().Sinks))
	}
}

// TestHostPlayRecord plays a tone into null sink "one" and records its
// monitor: the recording holds the tone.
func TestHostPlayRecord(t *testing.T) {
	p := startPulse(t, "")
	start := time.Now()
	var progress int
	res, err := PlayRecord(context.Background(), TestOptions{
		Native: p.Native, Play: true, Sink: "one", Source: "one.monitor", Seconds: 2,
		Progress: func(string, int64, int64) { progress++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v rms %v dBFS peak %v dBFS", time.Since(start).Round(time.Millisecond), res, *res.Recorded.RMSdBFS, *res.Recorded.PeakdBFS)
	l := res.Recorded
	if l.Silent() || l.NonZeroPercent < 60 {
		t.Errorf("recorded level %+v: want the tone", l)
	}
	if l.FrequencyHz < 430 || l.FrequencyHz > 450 {
		t.Errorf("frequency %v Hz, want 440", l.FrequencyHz)
	}
	if l.Seconds < 1.5 {
		t.Errorf("recorded %v s, want about 2", l.Seconds)
	}
	if progress == 0 {
		t.Error("no progress reported")
	}
	// Recording the other, silent sink's monitor finds silence.
	res, err = PlayRecord(context.Background(), TestOptions{Native: p.Native, Play: true, Sink: "one", Source: "two.monitor", Seconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recorded.Silent() {
		t.Errorf("two.monitor: %+v, want silence", res.Recorded)
	}
	if _, err := PlayRecord(context.Background(), TestOptions{Native: p.Native, Source: "nope", Seconds: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown source: %v, want ErrNotFound", err)
	}
}
