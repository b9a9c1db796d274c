package client

import (
	"context"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/wifi"
)

// WiFiStatus returns the Wi-Fi interface's state, the network it is on
// and, when connected, a fresh signal reading.
func (c *Client) WiFiStatus(ctx context.Context) (wifi.Status, error) {
	return get[wifi.Status](ctx, c, "/api/v1/wifi")
}

// WiFiScan scans and returns the networks in range, strongest first, with
// the finished operation. progress, if not nil, gets the operation's
// progress messages.
func (c *Client) WiFiScan(ctx context.Context, progress func(string)) ([]wifi.BSS, journal.Operation, error) {
	var each func(journal.Progress)
	if progress != nil {
		each = func(p journal.Progress) { progress(p.Message) }
	}
	return result[[]wifi.BSS](c.runOperation(ctx, "/api/v1/wifi/scan", nil, each))
}

// WiFiConnect joins a network and returns once it is joined or has
// failed. The PSK goes to the daemon only; the journal keeps a
// fingerprint of it.
func (c *Client) WiFiConnect(ctx context.Context, n wifi.Network) (wifi.Status, journal.Operation, error) {
	return result[wifi.Status](c.postOperation(ctx, "/api/v1/wifi/connect", n))
}

// WiFiForget removes a known network from wpa_supplicant.
func (c *Client) WiFiForget(ctx context.Context, ssid string) (wifi.Status, journal.Operation, error) {
	return result[wifi.Status](c.postOperation(ctx, "/api/v1/wifi/forget", apitype.WiFiForgetRequest{SSID: ssid}))
}
