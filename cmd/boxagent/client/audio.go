package client

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// Audio returns PulseAudio's cards, sinks, sources and default devices.
func (c *Client) Audio(ctx context.Context) (audio.State, error) {
	var s audio.State
	return s, c.call(ctx, "GET", "/api/v1/audio", &s)
}

// AudioMode switches a card (or a headset by its address) to music,
// call, off or a raw profile name.
func (c *Client) AudioMode(ctx context.Context, card, mode string) (audio.ModeResult, journal.Operation, error) {
	var res audio.ModeResult
	op, err := c.postOperation(ctx, "/api/v1/audio/cards/"+url.PathEscape(card)+"/mode", map[string]string{"mode": mode})
	if err == nil {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}

// AudioDefault makes a sink or source (kind) the default device.
func (c *Client) AudioDefault(ctx context.Context, kind, name string) (journal.Operation, error) {
	return c.postOperation(ctx, "/api/v1/audio/default", map[string]string{"kind": kind, "name": name})
}

// AudioVolume sets a device's volume (percent, when not nil) and mute
// (when not nil), and returns the device as it is then.
func (c *Client) AudioVolume(ctx context.Context, device string, percent *float64, mute *bool) (audio.Device, journal.Operation, error) {
	var d audio.Device
	body := map[string]any{"device": device}
	if percent != nil {
		body["percent"] = *percent
	}
	if mute != nil {
		body["mute"] = *mute
	}
	op, err := c.postOperation(ctx, "/api/v1/audio/volume", body)
	if err == nil {
		err = json.Unmarshal(op.Result, &d)
	}
	return d, op, err
}

// AudioTest runs the play-and-record test, a long operation: progress is
// called with each progress event until it ends.
func (c *Client) AudioTest(ctx context.Context, req apitype.AudioTestRequest, progress func(journal.Progress)) (audio.TestResult, journal.Operation, error) {
	var res audio.TestResult
	op, err := c.runOperation(ctx, "/api/v1/audio/test", req, progress)
	if err == nil {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}
