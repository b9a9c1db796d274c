package audio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Modes of a headset card.
const (
	ModeMusic = "music" // A2DP: stereo playback, no microphone
	ModeCall  = "call"  // HFP or HSP: mono, with the headset microphone
	ModeOff   = "off"
)

// Profile names of a headset card, best first: PulseAudio's
// (a2dp_sink, handsfree_head_unit, headset_head_unit) and PipeWire's
// (a2dp-sink; headset-head-unit for HFP and HSP alike). A card offers one
// set or the other; PipeWire's active profile carries the codec
// (a2dp-sink-sbc), see profileIs.
var (
	musicProfiles = []string{"a2dp_sink", "a2dp-sink"}
	callProfiles  = []string{"handsfree_head_unit", "headset_head_unit", "headset-head-unit"}
)

// Bluetooth UUIDs of the voice profiles, in the order callProfiles
// prefers them: HFP hands-free, HSP headset.
var callUUIDs = []string{"0000111e-0000-1000-8000-00805f9b34fb", "00001108-0000-1000-8000-00805f9b34fb"}

// modeOf is the mode of a headset's active profile, "" for a profile that
// is none of them.
func modeOf(profile string) string {
	is := func(names []string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return profileIs(profile, n) })
	}
	switch {
	case profile == "off":
		return ModeOff
	case is(musicProfiles):
		return ModeMusic
	case is(callProfiles):
		return ModeCall
	}
	return ""
}

func availableModes(c *Card) []string {
	var modes []string
	for _, m := range []struct {
		mode  string
		names []string
	}{{ModeMusic, musicProfiles}, {ModeCall, callProfiles}, {ModeOff, []string{"off"}}} {
		for _, n := range m.names {
			if p, ok := c.Profile(n); ok && p.Available {
				modes = append(modes, m.mode)
				break
			}
		}
	}
	return modes
}

// SetCardProfile makes profile the card's active profile. The profile
// must exist; PulseAudio refuses one that is not available.
func (c *Client) SetCardProfile(ctx context.Context, cardName, profile string) error {
	return setCardProfile(ctx, c, cardName, profile)
}

func setCardProfile(ctx context.Context, c modeDriver, cardName, profile string) error {
	card, err := c.cardByName(cardName)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("set the profile of card %s to %s", card.Name, profile)
	p, ok := card.Profile(profile)
	if !ok {
		names := make([]string, len(card.Profiles))
		for i, pr := range card.Profiles {
			names[i] = pr.Name
		}
		return &Error{Op: op, Kind: ErrNotFound, Msg: "the card has no such profile; it has " + strings.Join(names, ", ")}
	}
	return c.switchProfile(ctx, card, p, op)
}

// switchProfile sets the card's ActiveProfile over D-Bus.
func (c *Client) switchProfile(ctx context.Context, card *Card, p Profile, op string) error {
	return c.setProfilePath(ctx, card, p.path, op)
}

// setProfilePath sets ActiveProfile: a variant holding an object path
// (anything else is InvalidArgs).
func (c *Client) setProfilePath(ctx context.Context, card *Card, p dbus.ObjectPath, op string) error {
	if err := c.set(ctx, card.path, ifaceCard, "ActiveProfile", p); err != nil {
		e := wrap(op, err)
		var ae *Error
		if errors.As(e, &ae) && ae.Kind == nil && strings.Contains(strings.ToLower(ae.Msg), "input/output") {
			ae.Kind = ErrUnavailable
			ae.Hint = "the headset has not connected this profile yet"
		}
		return e
	}
	// The signal will say so too; the caller reads its own write now.
	c.mu.Lock()
	if cc, ok := c.cards[card.path]; ok {
		for _, pr := range cc.Profiles {
			if pr.path == p {
				cc.ActiveProfile = pr.Name
			}
		}
	}
	c.mu.Unlock()
	return nil
}

// ModeResult says what SetMode did.
type ModeResult struct {
	Card           string `json:"card"`
	Mode           string `json:"mode"`
	Profile        string `json:"profile"`
	FallbackSink   string `json:"fallback_sink,omitempty"`
	FallbackSource string `json:"fallback_source,omitempty"`
	// Waited is how long the profile took to become available.
	WaitedSeconds float64 `json:"waited_seconds,omitempty"`
}

// SetMode switches a card (a headset: bluez_card.… or its Bluetooth
// address) to music (A2DP), call (HFP, else HSP) or off, or to a raw
// profile name. It then makes the card's sink, and for call its source,
// the fallback devices.
func (c *Client) SetMode(ctx context.Context, cardName, mode string) (ModeResult, error) {
	return setMode(ctx, c, cardName, mode)
}

// setMode is SetMode on either backend.
func setMode(ctx context.Context, c modeDriver, cardName, mode string) (ModeResult, error) {
	cardName = CardName(cardName)
	card, err := c.cardByName(cardName)
	if err != nil {
		return ModeResult{}, err
	}
	res := ModeResult{Card: card.Name, Mode: mode}
	op := fmt.Sprintf("switch %s to %s", card.Name, mode)
	var profile Profile
	switch mode {
	case ModeMusic:
		var ok bool
		profile, ok = pick(card, musicProfiles)
		if !ok {
			return res, &Error{Op: op, Kind: ErrUnavailable, Msg: "the card offers no A2DP playback profile (a2dp_sink, PipeWire's a2dp-sink)",
				Hint: "is it a headset? boxagent audio show lists its profiles"}
		}
	case ModeCall:
		var ok bool
		profile, ok = pick(card, callProfiles)
		if !ok {
			return res, &Error{Op: op, Kind: ErrUnavailable, Msg: "the headset offers no microphone profile (HFP/HSP)",
				Hint: "PulseAudio needs module-bluetooth-discover headset=native (deploy/pulseaudio/system.pa), PipeWire libspa-0.2-bluetooth with WirePlumber; some headsets have no microphone"}
		}
	case ModeOff:
		profile, _ = card.Profile("off")
	default:
		p, ok := card.Profile(mode)
		if !ok {
			return res, &Error{Op: op, Kind: ErrInvalid, Msg: fmt.Sprintf("%q is neither music, call, off nor a profile of the card", mode),
				Hint: "boxagent audio show lists the card's profiles"}
		}
		profile = p
		res.Mode = modeOf(mode)
	}
	if profile.Name == "" {
		return res, &Error{Op: op, Kind: ErrNotFound, Msg: "the card has no off profile"}
	}
	res.Profile = profile.Name
	if !profile.Available {
		start := time.Now()
		if err := waitAvailable(ctx, c, card, profile, mode); err != nil {
			return res, &Error{Op: op, Kind: ErrUnavailable, Msg: err.Error(),
				Hint: "connect the headset (boxagent bt connect ADDR) and try again"}
		}
		res.WaitedSeconds = time.Since(start).Round(time.Millisecond).Seconds()
	}
	if err := c.switchProfile(ctx, card, profile, op); err != nil {
		return res, err
	}
	if profile.Name == "off" {
		return res, nil
	}
	// The card's devices were created while the switch ran: the backend
	// reads them from the server, or waits for its events, rather than
	// trusting the model to have taken them in.
	sink, source, err := c.cardDevices(ctx, card, profile)
	if err != nil {
		return res, wrap(op, err)
	}
	if sink != "" && profile.Sinks > 0 {
		if err := c.SetFallback(ctx, "sink", sink); err != nil {
			return res, err
		}
		res.FallbackSink = sink
	}
	if source != "" && (mode == ModeCall || profile.Sources > 0 && modeOf(profile.Name) != ModeMusic) {
		if err := c.SetFallback(ctx, "source", source); err != nil {
			return res, err
		}
		res.FallbackSource = source
	}
	return res, nil
}

// pick returns the first of names the card has, preferring an available
// one.
func pick(card *Card, names []string) (Profile, bool) {
	var first Profile
	found := false
	for _, n := range names {
		if p, ok := card.Profile(n); ok {
			if p.Available {
				return p, true
			}
			if !found {
				first, found = p, true
			}
		}
	}
	return first, found
}

// waitAvailable waits for the sound server to signal that profile became
// available, asking BlueZ to connect it first when it can.
func waitAvailable(ctx context.Context, c modeDriver, card *Card, profile Profile, mode string) error {
	ch, cancel := c.Subscribe()
	defer cancel()
	opts := c.options()
	ctx, stop := context.WithTimeout(ctx, opts.ModeTimeout)
	defer stop()
	if opts.Bluetooth != nil && card.Headset && mode == ModeCall {
		if err := connectVoice(ctx, opts.Bluetooth, card.Name); err != nil {
			c.logger().Info("cannot connect the voice profile; waiting for the headset", "card", card.Name, "err", err)
		}
	}
	for {
		// Checked after subscribing, so a change just before is not lost.
		if cur, err := c.cardByName(card.Name); err == nil {
			if p, ok := cur.Profile(profile.Name); ok && p.Available {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("profile %s did not become available within %s", profile.Name, opts.ModeTimeout)
		case <-c.Done():
			return ErrClosed
		case <-ch:
		}
	}
}

// connectVoice asks Bluetooth to connect a headset's voice profile, HFP
// else HSP, when the sound server shows it present but not available: the
// headset connected A2DP only. The server then signals the profile
// available, which waitAvailable waits for.
func connectVoice(ctx context.Context, bt ProfileConnector, card string) error {
	addr, ok := HeadsetAddress(card)
	if !ok {
		return fmt.Errorf("%s is not a Bluetooth card", card)
	}
	var errs []error
	for _, u := range callUUIDs {
		err := bt.ConnectProfile(ctx, addr, u)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cardDevices reads a card's first sink and source from PulseAudio.
func (c *Client) cardDevices(ctx context.Context, card *Card, _ Profile) (sink, source string, err error) {
	m, err := c.getAll(ctx, card.path, ifaceCard)
	if err != nil {
		return "", "", err
	}
	var sinks, sources []dbus.ObjectPath
	take(m, "Sinks", &sinks)
	take(m, "Sources", &sources)
	name := func(p dbus.ObjectPath) string {
		var n string
		_ = c.obj(p).CallWithContext(ctx, ifaceProps+".Get", 0, ifaceDevice, "Name").Store(&n)
		return n
	}
	if len(sinks) > 0 {
		sink = name(sinks[0])
	}
	for _, p := range sources {
		// Skip the sink's monitor: the microphone is wanted.
		n := name(p)
		if n != "" && !strings.HasSuffix(n, ".monitor") {
			source = n
			break
		}
	}
	return sink, source, nil
}

// SetFallback makes a sink or source (kind "sink" or "source") the
// fallback device: where new streams go.
func (c *Client) SetFallback(ctx context.Context, kind, name string) error {
	op, err := checkFallback(kind, name)
	if err != nil {
		return err
	}
	p, err := c.pathOf(ctx, kind, name)
	if err != nil {
		return wrap(op, err)
	}
	prop := "FallbackSink"
	if kind == "source" {
		prop = "FallbackSource"
	}
	if err := c.set(ctx, corePath, ifaceCore, prop, p); err != nil {
		return wrap(op, err)
	}
	c.mu.Lock()
	if kind == "sink" {
		c.fallbackSink = p
	} else {
		c.fallbackSource = p
	}
	c.mu.Unlock()
	return nil
}

// checkFallback refuses a kind that is neither sink nor source; op names
// the change.
func checkFallback(kind, name string) (string, error) {
	if kind != "sink" && kind != "source" {
		return "", &Error{Op: "set the default device", Kind: ErrInvalid, Msg: fmt.Sprintf("%q is neither sink nor source", kind)}
	}
	return fmt.Sprintf("make %s the default %s", name, kind), nil
}

// pathOf asks PulseAudio for a device's path by name, so that a device
// created a moment ago is found even before its signal was taken in.
func (c *Client) pathOf(ctx context.Context, kind, name string) (dbus.ObjectPath, error) {
	method := ifaceCore + ".GetSinkByName"
	if kind == "source" {
		method = ifaceCore + ".GetSourceByName"
	}
	var p dbus.ObjectPath
	err := c.core().CallWithContext(ctx, method, 0, name).Store(&p)
	return p, err
}

// SetVolume sets every channel of a sink or source to pct percent
// (0..MaxVolumePercent).
func (c *Client) SetVolume(ctx context.Context, name string, pct float64) (Volume, error) {
	op, d, raw, err := volumeFor(c.device, name, pct)
	if err != nil {
		return Volume{}, err
	}
	if err := c.set(ctx, d.path, ifaceDevice, "Volume", raw); err != nil {
		return Volume{}, wrap(op, err)
	}
	v := newVolume(raw)
	c.updateDevice(d.path, func(d *Device) { d.Volume = v })
	return v, nil
}

// volumeFor finds the device a volume change is for and gives pct for
// each of its channels; a volume out of range is refused. op names the
// change.
func volumeFor(device func(kind, name string) (*Device, error), name string, pct float64) (op string, d *Device, raw []uint32, err error) {
	op = fmt.Sprintf("set the volume of %s to %g%%", name, pct)
	if pct < 0 || pct > MaxVolumePercent || pct != pct {
		return op, nil, nil, &Error{Op: op, Kind: ErrInvalid, Msg: fmt.Sprintf("the volume must be 0 to %d %%", MaxVolumePercent)}
	}
	if d, err = device("", name); err != nil {
		return op, nil, nil, err
	}
	n := d.channels
	if n == 0 {
		n = len(d.Volume.Channels)
	}
	if n == 0 {
		n = 1
	}
	raw = make([]uint32, n)
	for i := range raw {
		raw[i] = rawVolume(pct)
	}
	return op, d, raw, nil
}

// muteWord names a mute change.
func muteWord(mute bool) string {
	if mute {
		return "mute"
	}
	return "unmute"
}

// SetMute mutes or unmutes a sink or source.
func (c *Client) SetMute(ctx context.Context, name string, mute bool) error {
	d, err := c.device("", name)
	if err != nil {
		return err
	}
	if err := c.set(ctx, d.path, ifaceDevice, "Mute", mute); err != nil {
		return wrap(muteWord(mute)+" "+name, err)
	}
	c.updateDevice(d.path, func(d *Device) { d.Muted = mute })
	return nil
}
