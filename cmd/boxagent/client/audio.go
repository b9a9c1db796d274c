package client

import (
	"context"
	"net/url"

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// Audio returns PulseAudio's cards, sinks, sources and default devices.
func (c *Client) Audio(ctx context.Context) (audio.State, error) {
	return get[audio.State](ctx, c, "/api/v1/audio")
}

// AudioMode switches a card (or a headset by its address) to music,
// call, off or a raw profile name.
func (c *Client) AudioMode(ctx context.Context, card, mode string) (audio.ModeResult, journal.Operation, error) {
	return result[audio.ModeResult](c.postOperation(ctx, "/api/v1/audio/cards/"+url.PathEscape(card)+"/mode", apitype.AudioModeRequest{Mode: mode}))
}

// AudioDefault makes a sink or source (kind) the default device.
func (c *Client) AudioDefault(ctx context.Context, kind, name string) (apitype.AudioDefaultResult, journal.Operation, error) {
	return result[apitype.AudioDefaultResult](c.postOperation(ctx, "/api/v1/audio/default", apitype.AudioDefaultRequest{Kind: kind, Name: name}))
}

// AudioVolume sets a device's volume (percent, when not nil) and mute
// (when not nil), and returns the device as it is then.
func (c *Client) AudioVolume(ctx context.Context, device string, percent *float64, mute *bool) (audio.Device, journal.Operation, error) {
	body := apitype.AudioVolumeRequest{Device: device, Percent: percent, Mute: mute}
	return result[audio.Device](c.postOperation(ctx, "/api/v1/audio/volume", body))
}

// AudioTest runs the play-and-record test, a long operation: progress is
// called with each progress event until it ends.
func (c *Client) AudioTest(ctx context.Context, req apitype.AudioTestRequest, progress func(journal.Progress)) (audio.TestResult, journal.Operation, error) {
	return result[audio.TestResult](c.runOperation(ctx, "/api/v1/audio/test", req, progress))
}
