package audio

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/godbus/dbus/v5"
)

// VolumeNorm is PulseAudio's 100 % (PA_VOLUME_NORM).
const VolumeNorm = 65536

// MaxVolumePercent is the loudest volume boxagent sets: above 100 %
// PulseAudio amplifies in software, and beyond 150 % it mostly clips.
const MaxVolumePercent = 150

// Profile is one profile of a card.
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Priority    uint32 `json:"priority"`
	Available   bool   `json:"available"`
	Sinks       uint32 `json:"sinks"`
	Sources     uint32 `json:"sources"`

	path dbus.ObjectPath
}

// Card is a sound card: an ALSA card or a Bluetooth headset
// (bluez_card.XX_XX_XX_XX_XX_XX).
type Card struct {
	Name          string    `json:"name"`
	Index         uint32    `json:"index"`
	Driver        string    `json:"driver"`
	Description   string    `json:"description,omitempty"`
	Profiles      []Profile `json:"profiles"`
	ActiveProfile string    `json:"active_profile"`
	// Headset is true for Bluetooth cards, which have modes.
	Headset bool `json:"headset"`
	// Mode is the active profile's friendly name on a headset: music,
	// call or off ("" for other profiles and other cards).
	Mode string `json:"mode,omitempty"`
	// Modes are the modes the headset offers now (available profiles).
	Modes   []string `json:"modes,omitempty"`
	Sinks   []string `json:"sinks"`
	Sources []string `json:"sources"`

	path dbus.ObjectPath
}

// Profile returns the card's profile named name.
func (c *Card) Profile(name string) (Profile, bool) {
	for _, p := range c.Profiles {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// Channel is one channel's volume.
type Channel struct {
	Raw     uint32  `json:"raw"`
	Percent float64 `json:"percent"`
	// DB is the volume in dB; nil means silence (-inf dB).
	DB *float64 `json:"db"`
}

// Volume is a device's volume, per channel and overall (the loudest
// channel, as pactl shows it).
type Volume struct {
	Channels []Channel `json:"channels"`
	Percent  float64   `json:"percent"`
	DB       *float64  `json:"db"`
}

func newVolume(raw []uint32) Volume {
	var v Volume
	var max uint32
	for _, r := range raw {
		v.Channels = append(v.Channels, Channel{Raw: r, Percent: percent(r), DB: decibel(r)})
		if r > max {
			max = r
		}
	}
	if v.Channels == nil {
		v.Channels = []Channel{}
	}
	v.Percent, v.DB = percent(max), decibel(max)
	return v
}

func percent(raw uint32) float64 {
	return math.Round(float64(raw)*1000/VolumeNorm) / 10
}

// decibel is PulseAudio's software volume in dB (pa_sw_volume_to_dB: the
// cube of the linear factor); nil for silence.
func decibel(raw uint32) *float64 {
	if raw == 0 {
		return nil
	}
	db := math.Round(60*math.Log10(float64(raw)/VolumeNorm)*100) / 100
	return &db
}

// rawVolume converts a percentage to PulseAudio's volume.
func rawVolume(pct float64) uint32 {
	return uint32(math.Round(pct * VolumeNorm / 100))
}

// Port is one port of a device (speaker, headphones, headset mic…).
type Port struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Priority    uint32 `json:"priority"`
	// Available is PulseAudio's availability: unknown, no or yes.
	Available string `json:"available"`

	path dbus.ObjectPath
}

// Device is a sink (output) or a source (input).
type Device struct {
	Kind        string `json:"kind"` // "sink" or "source"
	Name        string `json:"name"`
	Index       uint32 `json:"index"`
	Description string `json:"description,omitempty"`
	Driver      string `json:"driver"`
	// Card is the name of the device's card, "" for a virtual device.
	Card       string `json:"card,omitempty"`
	SampleRate uint32 `json:"sample_rate"`
	Volume     Volume `json:"volume"`
	Muted      bool   `json:"muted"`
	State      string `json:"state"`
	Ports      []Port `json:"ports,omitempty"`
	ActivePort string `json:"active_port,omitempty"`
	// Monitor is a sink's monitor source, or for a monitor source the
	// sink it monitors.
	Monitor string `json:"monitor,omitempty"`
	// IsMonitor is true for a sink's monitor source.
	IsMonitor bool `json:"is_monitor,omitempty"`

	path     dbus.ObjectPath // PulseAudio's D-Bus objects
	cardPath dbus.ObjectPath
	monPath  dbus.ObjectPath
	channels int
	// PipeWire's native-protocol indices: the card's, and a sink's
	// monitor source or a monitor's sink.
	cardIndex uint32
	monIndex  uint32
}

// deviceStates are PulseAudio's device states by number.
var deviceStates = map[uint32]string{0: "running", 1: "idle", 2: "suspended"}

var portAvailable = map[uint32]string{0: "unknown", 1: "no", 2: "yes"}

// ServerInfo names the PulseAudio answering.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	DBus    string `json:"dbus"`
	Native  string `json:"native,omitempty"`
	How     string `json:"how,omitempty"`
	// Backend is the sound server boxagent drives: pulseaudio (over its
	// D-Bus protocol) or pipewire (over pipewire-pulse's native protocol).
	Backend string `json:"backend"`
}

// State is everything the client knows, as one consistent copy.
type State struct {
	Server         ServerInfo `json:"server"`
	Cards          []Card     `json:"cards"`
	Sinks          []Device   `json:"sinks"`
	Sources        []Device   `json:"sources"`
	FallbackSink   string     `json:"fallback_sink"`
	FallbackSource string     `json:"fallback_source"`
}

// lookupCard finds a card by name in a backend's model (its lock held): a
// copy, or an error that names the cards there are.
func lookupCard[K comparable](cards map[K]*Card, name string) (*Card, error) {
	var names []string
	for _, card := range cards {
		if card.Name == name {
			cc := *card
			cc.Profiles = slices.Clone(card.Profiles)
			return &cc, nil
		}
		names = append(names, card.Name)
	}
	sort.Strings(names)
	have := "there are no cards"
	if len(names) > 0 {
		have = "cards: " + strings.Join(names, ", ")
	}
	return nil, &Error{Op: "find card " + name, Kind: ErrNotFound, Msg: "no such card; " + have,
		Hint: "boxagent audio show lists the cards"}
}

// lookupDevice finds a sink or source (kind "": either) by name in a
// backend's model (its lock held).
func lookupDevice[K comparable](devices map[K]*Device, kind, name string) (*Device, error) {
	for _, d := range devices {
		if d.Name == name && (kind == "" || d.Kind == kind) {
			dd := *d
			return &dd, nil
		}
	}
	what := kind
	if what == "" {
		what = "sink or source"
	}
	return nil, &Error{Op: fmt.Sprintf("find %s %s", what, name), Kind: ErrNotFound, Msg: "no such " + what,
		Hint: "boxagent audio show lists the sinks and sources"}
}

// assemble makes a State of a backend's model: cardOf names a device's
// card ("" for none), monitorOf a sink's monitor source or the sink a
// monitor source monitors. Cards, devices and their lists are copies.
func assemble(info ServerInfo, cards []*Card, devices []*Device, cardOf, monitorOf func(*Device) string) State {
	s := State{Server: info, Cards: []Card{}, Sinks: []Device{}, Sources: []Device{}}
	for _, d := range devices {
		dd := *d
		dd.Ports = slices.Clone(d.Ports)
		dd.Card, dd.Monitor = cardOf(d), monitorOf(d)
		if d.Kind == "sink" {
			s.Sinks = append(s.Sinks, dd)
		} else {
			s.Sources = append(s.Sources, dd)
		}
	}
	for _, card := range cards {
		cc := *card
		cc.Profiles = slices.Clone(card.Profiles)
		cc.Sinks, cc.Sources = []string{}, []string{}
		for _, d := range s.Sinks {
			if d.Card == cc.Name {
				cc.Sinks = append(cc.Sinks, d.Name)
			}
		}
		for _, d := range s.Sources {
			if d.Card == cc.Name {
				cc.Sources = append(cc.Sources, d.Name)
			}
		}
		s.Cards = append(s.Cards, cc)
	}
	s.finish()
	return s
}

// finish sorts the model's lists by index and gives headsets their
// modes; both backends end State with it.
func (s *State) finish() {
	for i := range s.Cards {
		c := &s.Cards[i]
		sort.Strings(c.Sinks)
		sort.Strings(c.Sources)
		if c.Headset {
			c.Mode = modeOf(c.ActiveProfile)
			c.Modes = availableModes(c)
		}
	}
	sort.Slice(s.Cards, func(i, j int) bool { return s.Cards[i].Index < s.Cards[j].Index })
	sort.Slice(s.Sinks, func(i, j int) bool { return s.Sinks[i].Index < s.Sinks[j].Index })
	sort.Slice(s.Sources, func(i, j int) bool { return s.Sources[i].Index < s.Sources[j].Index })
}

// Card returns the card named name.
func (s State) Card(name string) (Card, bool) {
	for _, c := range s.Cards {
		if c.Name == name {
			return c, true
		}
	}
	return Card{}, false
}

// Sink returns the sink named name.
func (s State) Sink(name string) (Device, bool) { return findDevice(s.Sinks, name) }

// Source returns the source named name.
func (s State) Source(name string) (Device, bool) { return findDevice(s.Sources, name) }

func findDevice(ds []Device, name string) (Device, bool) {
	for _, d := range ds {
		if d.Name == name {
			return d, true
		}
	}
	return Device{}, false
}

// CardName turns what a user types into a card name: a Bluetooth address
// (00:1B:66:AA:BB:CC) becomes bluez_card.00_1B_66_AA_BB_CC; anything else
// is taken as the name itself.
func CardName(s string) string {
	if isBTAddress(s) {
		return "bluez_card." + strings.ToUpper(strings.ReplaceAll(s, ":", "_"))
	}
	return s
}

// HeadsetAddress is CardName's inverse for a headset's card:
// bluez_card.00_1B_66_AA_BB_CC is 00:1B:66:AA:BB:CC (PulseAudio and
// pipewire-pulse name them alike). Other cards have none.
func HeadsetAddress(card string) (string, bool) {
	s, ok := strings.CutPrefix(card, "bluez_card.")
	if s = strings.ToUpper(strings.ReplaceAll(s, "_", ":")); !ok || !isBTAddress(s) {
		return "", false
	}
	return s, true
}

func isBTAddress(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i, r := range s {
		if i%3 == 2 {
			if r != ':' {
				return false
			}
			continue
		}
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
