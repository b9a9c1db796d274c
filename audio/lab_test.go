//go:build lab

package audio

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/deploy/vm"
	"github.com/boxagent/boxagent/deploy/vm/guest"
)

// TestLabAudio boots the virtual board once and runs the TestGuest* tests
// below in it: a real ALSA card (snd-dummy) under PulseAudio's
// module-alsa-card. Run with make test-lab LAB_PKGS=./audio.
func TestLabAudio(t *testing.T) {
	vm.RunGoTests(t, "./audio", vm.Options{Timeout: 3 * time.Minute}, "-test.run=^TestGuest")
}

func guestClient(t *testing.T, pa *guest.ALSAPulse) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := Connect(ctx, []Server{{DBus: pa.DBus, Native: pa.Native, How: "lab"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestGuestALSACardProfiles switches the snd-dummy card between its
// profiles over D-Bus and sees each switch come back as a signal, with
// the card's sink and source appearing and going.
func TestGuestALSACardProfiles(t *testing.T) {
	vm.RequireGuest(t)
	pa := guest.StartALSAPulse(t)
	c := guestClient(t, pa)
	card, ok := c.State().Card(guest.ALSACard)
	if !ok {
		t.Fatalf("no card %s in %+v", guest.ALSACard, c.State().Cards)
	}
	var names []string
	for _, p := range card.Profiles {
		names = append(names, p.Name)
	}
	t.Logf("card %s: profiles %v, active %s", card.Name, names, card.ActiveProfile)
	for _, want := range []string{"output:stereo-fallback", "input:stereo-fallback", "off"} {
		if !slices.Contains(names, want) {
			t.Fatalf("profile %s missing from %v", want, names)
		}
	}
	if card.Headset {
		t.Error("the ALSA card is taken for a headset")
	}
	ctx := context.Background()
	ev, cancel := c.Subscribe()
	defer cancel()
	var times []time.Duration
	for i, p := range []string{"off", "output:stereo-fallback", "input:stereo-fallback", "off", "output:stereo-fallback", "input:stereo-fallback"} {
		start := time.Now()
		if err := c.SetCardProfile(ctx, guest.ALSACard, p); err != nil {
			t.Fatalf("switch %d to %s: %v", i, p, err)
		}
		times = append(times, time.Since(start))
		// The card's devices come and go while the switch runs: their
		// signals may arrive before the profile's own.
		want := map[string]bool{"card.profile": true}
		switch p {
		case "output:stereo-fallback":
			want["sink.added"] = true
		case "input:stereo-fallback":
			want["source.added"] = true
		}
		waitEvent(t, ev, "card.profile "+p, func(e Event) bool {
			switch {
			case e.Kind == "card.profile" && e.Name == guest.ALSACard && e.Profile == p,
				e.Kind == "sink.added" && strings.HasPrefix(e.Name, "alsa_output.dummy"),
				e.Kind == "source.added" && strings.HasPrefix(e.Name, "alsa_input.dummy"):
				delete(want, e.Kind)
			}
			return len(want) == 0
		})
		s := c.State()
		got, _ := s.Card(guest.ALSACard)
		if got.ActiveProfile != p {
			t.Errorf("after switching to %s the model says %s", p, got.ActiveProfile)
		}
		switch p {
		case "output:stereo-fallback":
			if len(s.Sinks) != 1 || !strings.HasPrefix(s.Sinks[0].Name, "alsa_output.dummy") || s.Sinks[0].Card != guest.ALSACard {
				t.Errorf("output profile: sinks %+v", s.Sinks)
			}
		case "input:stereo-fallback":
			if len(s.Sinks) != 0 {
				t.Errorf("input profile: sinks left %+v", s.Sinks)
			}
		case "off":
			if len(s.Sinks)+len(s.Sources) != 0 {
				t.Errorf("off: devices left %+v %+v", s.Sinks, s.Sources)
			}
		}
	}
	slices.Sort(times)
	t.Logf("boxagent over D-Bus: %d ActiveProfile switches, median %s, max %s", len(times), times[len(times)/2].Round(time.Microsecond), times[len(times)-1].Round(time.Microsecond))

	// pactl for comparison (a process per switch).
	var ptimes []time.Duration
	for i := 0; i < 4; i++ {
		p := []string{"off", "output:stereo-fallback"}[i%2]
		cmd := exec.Command("pactl", "--server="+pa.Native, "set-card-profile", guest.ALSACard, p)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("pactl set-card-profile: %v: %s", err, out)
			break
		}
		ptimes = append(ptimes, time.Since(start))
		waitEvent(t, ev, "card.profile from pactl", func(e Event) bool { return e.Kind == "card.profile" && e.Profile == p })
	}
	if len(ptimes) > 0 {
		slices.Sort(ptimes)
		t.Logf("pactl set-card-profile: %d switches, median %s (the model followed each by signal)", len(ptimes), ptimes[len(ptimes)/2].Round(time.Microsecond))
	}
}

// TestGuestALSABadProfile: an unknown profile is refused before anything
// changes, and a bad profile path gets PulseAudio's own NotFoundError.
func TestGuestALSABadProfile(t *testing.T) {
	vm.RequireGuest(t)
	pa := guest.StartALSAPulse(t)
	c := guestClient(t, pa)
	ctx := context.Background()
	before, _ := c.State().Card(guest.ALSACard)
	err := c.SetCardProfile(ctx, guest.ALSACard, "output:nope")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown profile: %v, want ErrNotFound", err)
	}
	t.Logf("unknown profile: %v", err)
	card, _ := c.cardByName(guest.ALSACard)
	err = wrap("set a bad profile path", c.set(ctx, card.path, ifaceCard, "ActiveProfile", dbus.ObjectPath(string(card.path)+"/profile999")))
	var e *Error
	if !errors.As(err, &e) || e.Name != "org.PulseAudio.Core1.NotFoundError" || !errors.Is(err, ErrNotFound) {
		t.Errorf("bad profile path: %v, want org.PulseAudio.Core1.NotFoundError", err)
	}
	t.Logf("bad profile path: %v", err)
	// A profile given as a string, not an object path, is InvalidArgs.
	err = wrap("set a profile as a string", c.set(ctx, card.path, ifaceCard, "ActiveProfile", "off"))
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("profile as a string: %v, want ErrInvalid", err)
	}
	if after, _ := c.State().Card(guest.ALSACard); after.ActiveProfile != before.ActiveProfile {
		t.Errorf("the bad requests changed the profile: %s -> %s", before.ActiveProfile, after.ActiveProfile)
	}
	// Modes are for headsets; on this card "call" has no profile.
	if _, err := c.SetMode(ctx, guest.ALSACard, ModeCall); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no microphone profile") {
		t.Errorf("call on the ALSA card: %v", err)
	}
	if r, err := c.SetMode(ctx, guest.ALSACard, ModeOff); err != nil || r.Profile != "off" {
		t.Errorf("off: %+v, %v", r, err)
	}
}

// TestGuestALSAPlayRecord plays the tone into the dummy card's sink and
// records its monitor through ALSA's (dummy) timing.
func TestGuestALSAPlayRecord(t *testing.T) {
	vm.RequireGuest(t)
	pa := guest.StartALSAPulse(t)
	c := guestClient(t, pa)
	ctx := context.Background()
	res, err := c.SetMode(ctx, guest.ALSACard, "output:stereo-fallback+input:stereo-fallback")
	if err != nil {
		t.Fatal(err)
	}
	if res.FallbackSink == "" {
		t.Fatalf("no fallback sink after the switch: %+v", res)
	}
	start := time.Now()
	r, err := PlayRecord(ctx, TestOptions{Native: pa.Native, Play: true, Sink: res.FallbackSink, Source: res.FallbackSink + ".monitor", Seconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v", time.Since(start).Round(time.Millisecond), r)
	if r.Recorded.Silent() || r.Recorded.FrequencyHz < 430 || r.Recorded.FrequencyHz > 450 {
		t.Errorf("recorded %+v, want the 440 Hz tone", r.Recorded)
	}
}

// TestGuestSystemPulse runs PulseAudio in system mode with the shipped
// deploy/pulseaudio/system.pa, as a box does, and reaches it the way the
// agent does: [audio] server = "system", the cookie through PULSE_COOKIE.
func TestGuestSystemPulse(t *testing.T) {
	vm.RequireGuest(t)
	guest.StartSystemBus(t)
	script, err := filepath.Abs("../deploy/pulseaudio/system.pa")
	if err != nil {
		t.Fatal(err)
	}
	pa := guest.StartSystemPulse(t, script)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := Locator{Config: Config{Server: ServerSystem}, RunDir: "/run"}
	c, srv, err := Connect(ctx, l.Candidates(ctx), Options{})
	if err != nil {
		t.Fatalf("the agent cannot reach the system PulseAudio: %v", err)
	}
	defer c.Close()
	if srv.DBus != pa.DBus || srv.Native != pa.Native {
		t.Errorf("reached %+v, want %s and %s", srv, pa.DBus, pa.Native)
	}
	mods, err := c.Modules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("modules: %v", mods)
	for _, m := range []string{"module-dbus-protocol", "module-native-protocol-unix", "module-bluetooth-policy", "module-always-sink"} {
		if !slices.Contains(mods, m) {
			t.Errorf("%s not loaded", m)
		}
	}
	s := c.State()
	if len(s.Sinks) == 0 {
		t.Fatalf("no sink (module-always-sink should make one): %+v", s)
	}
	sink := s.Sinks[0]
	t.Setenv("PULSE_COOKIE", pa.Cookie)
	r, err := PlayRecord(ctx, TestOptions{Native: srv.Native, Play: true, Sink: sink.Name, Source: sink.Monitor, Seconds: 1})
	if err != nil {
		t.Fatalf("play-and-record with the system cookie: %v", err)
	}
	t.Logf("%+v", r)
	if r.Recorded.Silent() || r.Recorded.FrequencyHz < 430 || r.Recorded.FrequencyHz > 450 {
		t.Errorf("recorded %+v, want the tone", r.Recorded)
	}
	// Without the cookie, root is not in pulse-access: refused, and said so.
	t.Setenv("PULSE_COOKIE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	_, err = PlayRecord(ctx, TestOptions{Native: srv.Native, Source: sink.Monitor, Seconds: 1})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("without the cookie: %v, want ErrUnreachable", err)
	}
	t.Logf("without the cookie: %v (hint: %s)", err, HintOf(err))
}
