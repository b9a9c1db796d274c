package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"

	"github.com/jfreymuth/pulse/proto"
)

// SetMode switches a headset card to music, call or off (or a raw
// profile), as Client.SetMode does, with PipeWire's profile names.
func (c *PipeWireClient) SetMode(ctx context.Context, card, mode string) (ModeResult, error) {
	return setMode(ctx, c, card, mode)
}

// SetCardProfile makes profile the card's active profile.
func (c *PipeWireClient) SetCardProfile(ctx context.Context, card, profile string) error {
	return setCardProfile(ctx, c, card, profile)
}

// switchProfile sends SET_CARD_PROFILE and returns once the card's change
// event shows the profile active: pipewire-pulse may answer before that.
func (c *PipeWireClient) switchProfile(ctx context.Context, card *Card, p Profile, op string) error {
	ch, cancel := c.Subscribe()
	defer cancel()
	req := &proto.SetCardProfile{CardIndex: proto.Undefined, CardName: card.Name, ProfileName: p.Name}
	if err := c.pc.Request(req, nil); err != nil {
		return c.nativeError(op, err)
	}
	return c.await(ctx, ch, op, "the card did not show the profile active", func() bool {
		cur, err := c.cardByName(card.Name)
		return err == nil && profileIs(cur.ActiveProfile, p.Name)
	})
}

// cardDevices waits for the card's devices of profile p to be there (as
// many sinks and sources as the profile says it makes): PipeWire creates
// the nodes after the profile switch, and their events may come later
// than the card's.
func (c *PipeWireClient) cardDevices(ctx context.Context, card *Card, p Profile) (sink, source string, err error) {
	ch, cancel := c.Subscribe()
	defer cancel()
	find := func() bool {
		sink, source = "", ""
		for _, d := range c.State().Sinks {
			if d.Card == card.Name && sink == "" {
				sink = d.Name
			}
		}
		for _, d := range c.State().Sources {
			if d.Card == card.Name && !d.IsMonitor && source == "" {
				source = d.Name
			}
		}
		return (p.Sinks == 0 || sink != "") && (p.Sources == 0 || source != "")
	}
	err = c.await(ctx, ch, "find the devices of "+card.Name, "its sink and source did not appear", find)
	return sink, source, err
}

// await waits for cond, checked again at every event, for at most the
// mode timeout (a guard: the events are what it waits for).
func (c *PipeWireClient) await(ctx context.Context, ch <-chan Event, op, what string, cond func() bool) error {
	ctx, stop := context.WithTimeout(ctx, c.opts.ModeTimeout)
	defer stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-c.done:
			return &Error{Op: op, Kind: ErrClosed, Msg: "the connection to pipewire-pulse closed"}
		case <-ctx.Done():
			return &Error{Op: op, Kind: ErrUnavailable, Msg: fmt.Sprintf("%s within %s", what, c.opts.ModeTimeout)}
		}
	}
}

// SetFallback makes a sink or source the default device. The name is
// looked up by the server first: pipewire-pulse stores a default by name
// and would take one that does not exist. It returns once the server
// reports the new default (and its event has gone out).
func (c *PipeWireClient) SetFallback(ctx context.Context, kind, name string) error {
	op, err := checkFallback(kind, name)
	if err != nil {
		return err
	}
	ch, cancel := c.Subscribe()
	defer cancel()
	set := func() bool {
		if kind == "sink" {
			err = c.pc.Request(&proto.GetSinkInfo{SinkIndex: proto.Undefined, SinkName: name}, &proto.GetSinkInfoReply{})
			if err == nil {
				err = c.pc.Request(&proto.SetDefaultSink{SinkName: name}, nil)
			}
		} else {
			err = c.pc.Request(&proto.GetSourceInfo{SourceIndex: proto.Undefined, SourceName: name}, &proto.GetSourceInfoReply{})
			if err == nil {
				err = c.pc.Request(&proto.SetDefaultSource{SourceName: name}, nil)
			}
		}
		// A node the model has but the server does not know by name yet:
		// PipeWire makes a profile's nodes again right after the switch
		// (seen in CI: "no such entity" for the new A2DP sink). Tried
		// again at the next event; a name the model lacks fails at once.
		_, missing := c.device(kind, name)
		return !errors.Is(err, proto.ErrNoSuchEntity) || missing != nil
	}
	if werr := c.await(ctx, ch, op, name+" known to the server", set); werr != nil && err == nil {
		return werr
	}
	if err != nil {
		return c.nativeError(op, err)
	}
	return c.await(ctx, ch, op, "the server did not report the new default", func() bool {
		s := c.State()
		return map[string]string{"sink": s.FallbackSink, "source": s.FallbackSource}[kind] == name
	})
}

// SetVolume sets every channel of a sink or source to pct percent. Like
// every change here it returns once the server reports it: the model
// takes changes from the server's events only, so that each one goes out
// as an event, the caller's own too.
func (c *PipeWireClient) SetVolume(ctx context.Context, name string, pct float64) (Volume, error) {
	op, d, raw, err := volumeFor(c.device, name, pct)
	if err != nil {
		return Volume{}, err
	}
	ch, cancel := c.Subscribe()
	defer cancel()
	if d.Kind == "sink" {
		err = c.pc.Request(&proto.SetSinkVolume{SinkIndex: d.Index, ChannelVolumes: raw}, nil)
	} else {
		err = c.pc.Request(&proto.SetSourceVolume{SourceIndex: d.Index, ChannelVolumes: raw}, nil)
	}
	if err != nil {
		return Volume{}, c.nativeError(op, err)
	}
	v := newVolume(raw)
	return v, c.await(ctx, ch, op, "the server did not report the new volume", c.deviceIs(d, func(cur *Device) bool {
		return slices.EqualFunc(cur.Volume.Channels, v.Channels, func(a, b Channel) bool { return a.Raw == b.Raw })
	}))
}

// SetMute mutes or unmutes a sink or source.
func (c *PipeWireClient) SetMute(ctx context.Context, name string, mute bool) error {
	d, err := c.device("", name)
	if err != nil {
		return err
	}
	ch, cancel := c.Subscribe()
	defer cancel()
	if d.Kind == "sink" {
		err = c.pc.Request(&proto.SetSinkMute{SinkIndex: d.Index, Mute: mute}, nil)
	} else {
		err = c.pc.Request(&proto.SetSourceMute{SourceIndex: d.Index, Mute: mute}, nil)
	}
	op := muteWord(mute) + " " + name
	if err != nil {
		return c.nativeError(op, err)
	}
	return c.await(ctx, ch, op, "the server did not report the change", c.deviceIs(d, func(cur *Device) bool { return cur.Muted == mute }))
}

// deviceIs is a condition on the model's device d, for await.
func (c *PipeWireClient) deviceIs(d *Device, cond func(*Device) bool) func() bool {
	return func() bool {
		c.mu.RLock()
		defer c.mu.RUnlock()
		cur, ok := c.devices[devKey{d.Kind, d.Index}]
		return ok && cond(cur)
	}
}

// nativeError keeps the native protocol's own words, as streamError does
// for the test's streams; once the connection is gone (however it went:
// EOF, a reset, closed) the error is ErrClosed.
func (c *PipeWireClient) nativeError(op string, err error) error {
	gone := errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	select {
	case <-c.done:
		gone = true
	default:
	}
	if gone {
		return &Error{Op: op, Kind: ErrClosed, Msg: err.Error(), Hint: "is pipewire-pulse running?"}
	}
	return streamError(op, err)
}
