package audio

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jfreymuth/pulse"
	"github.com/jfreymuth/pulse/proto"
)

// The profile names of both stacks (LAB.md and lab-spike's PipeWire
// table): PulseAudio 16's and pipewire-pulse 0.3.65's, whose active
// profile carries the codec.
func TestModeOfBothStacks(t *testing.T) {
	for _, c := range []struct{ profile, mode string }{
		{"a2dp_sink", ModeMusic},
		{"handsfree_head_unit", ModeCall},
		{"headset_head_unit", ModeCall},
		{"a2dp_source", ""},
		{"headset_audio_gateway", ""},
		{"a2dp-sink", ModeMusic},
		{"a2dp-sink-sbc", ModeMusic},
		{"a2dp-sink-aac", ModeMusic},
		{"headset-head-unit", ModeCall},
		{"headset-head-unit-cvsd", ModeCall},
		{"headset-head-unit-msbc", ModeCall},
		{"audio-gateway", ""},
		{"a2dp-source", ""},
		{"a2dp-sinkx", ""},
		{"off", ModeOff},
		{"output:analog-stereo", ""},
		{"", ""},
	} {
		if got := modeOf(c.profile); got != c.mode {
			t.Errorf("modeOf(%q) = %q, want %q", c.profile, got, c.mode)
		}
	}
}

func TestProfileIs(t *testing.T) {
	for _, c := range []struct {
		active, name string
		want         bool
	}{
		{"a2dp-sink", "a2dp-sink", true},
		{"a2dp-sink-sbc", "a2dp-sink", true},
		{"headset-head-unit-cvsd", "headset-head-unit", true},
		{"a2dp-sink", "a2dp-sink-sbc", false},
		{"a2dp-sinks", "a2dp-sink", false},
		{"a2dp_sink", "a2dp-sink", false},
		{"off", "off", true},
		{"", "off", false},
	} {
		if got := profileIs(c.active, c.name); got != c.want {
			t.Errorf("profileIs(%q, %q) = %v, want %v", c.active, c.name, got, c.want)
		}
	}
}

// A headset card as pipewire-pulse lists it: the generic profiles and
// the codecs' own, "available" a boolean (0: unavailable); modes and the
// profile each mode picks.
func TestPipeWireHeadsetCard(t *testing.T) {
	r := &proto.GetCardInfoReply{CardIndex: 3, CardName: "bluez_card.00_AA_01_01_00_01", Driver: "module-bluez5-device.c",
		ActiveProfileName: "a2dp-sink-sbc", Properties: proto.PropList{"device.bus": proto.PropListString("bluetooth")}}
	profiles := []struct {
		name          string
		avail         uint32
		sinks, source uint32
	}{{"off", 1, 0, 0}, {"a2dp-sink", 1, 1, 0}, {"headset-head-unit", 0, 1, 1}, {"a2dp-sink-sbc", 1, 1, 0}, {"headset-head-unit-cvsd", 0, 1, 1}}
	// The reply's element type is the library's anonymous struct: grown,
	// not spelt.
	r.Profiles = slices.Grow(r.Profiles, len(profiles))[:len(profiles)]
	for i, p := range profiles {
		rp := &r.Profiles[i]
		rp.Name, rp.NumSinks, rp.NumSources, rp.Available = p.name, p.sinks, p.source, p.avail
	}
	card := nativeCard(r)
	if !card.Headset || card.Index != 3 {
		t.Fatalf("card %+v", card)
	}
	s := State{Cards: []Card{*card}}
	s.finish()
	got := s.Cards[0]
	if got.Mode != ModeMusic || !slices.Equal(got.Modes, []string{ModeMusic, ModeOff}) {
		t.Errorf("mode %q, modes %v; want music and [music off] (headset-head-unit is unavailable)", got.Mode, got.Modes)
	}
	if p, ok := pick(card, musicProfiles); !ok || p.Name != "a2dp-sink" {
		t.Errorf("music picks %+v", p)
	}
	if p, ok := pick(card, callProfiles); !ok || p.Name != "headset-head-unit" || p.Available || p.Sources != 1 {
		t.Errorf("call picks %+v, want headset-head-unit, unavailable, with a source", p)
	}
}

func TestPipeWireVersion(t *testing.T) {
	for _, c := range []struct{ name, version, want string }{
		{"PulseAudio (on PipeWire 0.3.65)", "15.0.0", "0.3.65"},
		{"PulseAudio (on PipeWire 1.2.7)", "15.0.0", "1.2.7"},
		{"pulseaudio", "16.1", "16.1"},
		{"on PipeWire 1.0.0-rc1", "15.0.0", "1.0.0"},
		{"on PipeWire x, on PipeWire 2..", "15.0.0", "2.."},
		{"PulseAudio (on PipeWire .3)", "15.0.0", "15.0.0"},
		{"PulseAudio (on Pipewire 0.3.65)", "15.0.0", "15.0.0"},
	} {
		if got := pipeWireVersion(c.name, c.version); got != c.want {
			t.Errorf("pipeWireVersion(%q, %q) = %q, want %q", c.name, c.version, got, c.want)
		}
	}
}

// The native protocol says "this changed"; the client tells what, with
// the kinds PulseAudio's D-Bus signals give.
func TestCardEvents(t *testing.T) {
	old := &Card{Name: "c", ActiveProfile: "a2dp-sink-sbc", Profiles: []Profile{{Name: "a2dp-sink", Available: true}, {Name: "headset-head-unit"}}}
	cur := &Card{Name: "c", ActiveProfile: "headset-head-unit-cvsd", Profiles: []Profile{{Name: "a2dp-sink", Available: true},
		{Name: "headset-head-unit", Available: true}, {Name: "headset-head-unit-cvsd", Available: true}}}
	var kinds []string
	for _, e := range cardEvents(old, cur) {
		kinds = append(kinds, e.Kind+" "+e.Profile)
	}
	want := []string{"card.profile_available headset-head-unit", "card.profile_available headset-head-unit-cvsd", "card.profile headset-head-unit-cvsd"}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if e := cardEvents(nil, cur); len(e) != 1 || e[0].Kind != "card.added" {
		t.Errorf("added: %+v", e)
	}
	if e := cardEvents(old, nil); len(e) != 1 || e[0].Kind != "card.removed" {
		t.Errorf("removed: %+v", e)
	}
	if e := cardEvents(cur, cur); len(e) != 0 {
		t.Errorf("no change: %+v", e)
	}
}

func TestDeviceEvents(t *testing.T) {
	old := &Device{Kind: "sink", Name: "s", Volume: newVolume([]uint32{VolumeNorm, VolumeNorm}), State: "idle"}
	cur := &Device{Kind: "sink", Name: "s", Volume: newVolume([]uint32{VolumeNorm / 2, VolumeNorm / 2}), Muted: true, State: "running"}
	var kinds []string
	for _, e := range deviceEvents(old, cur) {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"device.volume", "device.mute", "device.state"}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if e := deviceEvents(nil, cur); len(e) != 1 || e[0].Kind != "sink.added" {
		t.Errorf("added: %+v", e)
	}
}

// State links cards, sinks and their monitors by the protocol's indices.
func TestPipeWireState(t *testing.T) {
	c := &PipeWireClient{cards: map[uint32]*Card{
		5: {Name: "bluez_card.00_AA_01_01_00_01", Index: 5, Headset: true, ActiveProfile: "headset-head-unit-cvsd",
			Profiles: []Profile{{Name: "headset-head-unit", Available: true}}},
	}, devices: map[devKey]*Device{
		{"sink", 40}:   {Kind: "sink", Name: "bluez_output.00_AA_01_01_00_01.1", Index: 40, cardIndex: 5, monIndex: 41},
		{"source", 41}: {Kind: "source", Name: "bluez_output.00_AA_01_01_00_01.1.monitor", Index: 41, cardIndex: 5, monIndex: 40, IsMonitor: true},
		{"source", 42}: {Kind: "source", Name: "bluez_input.00_AA_01_01_00_01.0", Index: 42, cardIndex: 5, monIndex: proto.Undefined},
	}, defSink: "bluez_output.00_AA_01_01_00_01.1", server: Server{Native: "unix:/x", Backend: BackendPipeWire}}
	s := c.State()
	if s.Server.Backend != BackendPipeWire || s.FallbackSink != "bluez_output.00_AA_01_01_00_01.1" {
		t.Errorf("server %+v, fallback sink %q", s.Server, s.FallbackSink)
	}
	card := s.Cards[0]
	if card.Mode != ModeCall || len(card.Sinks) != 1 || len(card.Sources) != 2 {
		t.Errorf("card %+v", card)
	}
	if s.Sinks[0].Monitor != "bluez_output.00_AA_01_01_00_01.1.monitor" || s.Sinks[0].Card != card.Name {
		t.Errorf("sink %+v", s.Sinks[0])
	}
	if s.Sources[0].Monitor != "bluez_output.00_AA_01_01_00_01.1" || s.Sources[1].Monitor != "" || s.Sources[1].IsMonitor {
		t.Errorf("sources %+v", s.Sources)
	}
}

// PlayRecord lengthens the library's request timeout through its
// unexported field; a library that renames it must fail here, not leave
// the test with 1 s requests (the host tests call it on a live client).
func TestSetRequestTimeout(t *testing.T) {
	f, ok := reflect.TypeFor[pulse.Client]().FieldByName("c")
	if !ok || f.Type != reflect.TypeFor[*proto.Client]() {
		t.Fatalf("pulse.Client has no field c *proto.Client (%+v): setRequestTimeout cannot work", f)
	}
	if setRequestTimeout(&pulse.Client{}, time.Second) {
		t.Error("a client without a connection was given a timeout")
	}
}
