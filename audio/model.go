package audio

import (
	"math"
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

	path     dbus.ObjectPath
	cardPath dbus.ObjectPath
	monPath  dbus.ObjectPath
	channels int
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
