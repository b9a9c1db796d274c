package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/network"
)

// WiFiStatus returns the Wi-Fi interface's state, the network it is on
// and, when connected, a fresh signal reading.
func (c *Client) WiFiStatus(ctx context.Context) (network.WiFiStatus, error) {
	var s network.WiFiStatus
	return s, c.call(ctx, "GET", "/api/v1/wifi", &s)
}

// WiFiScan scans and returns the networks in range, strongest first, with
// the finished operation. progress, if not nil, gets the operation's
// progress messages.
func (c *Client) WiFiScan(ctx context.Context, progress func(string)) ([]network.WiFiBSS, journal.Operation, error) {
	var each func(journal.Progress)
	if progress != nil {
		each = func(p journal.Progress) { progress(p.Message) }
	}
	op, err := c.runOperation(ctx, "/api/v1/wifi/scan", nil, each)
	if err != nil {
		return nil, op, err
	}
	var bss []network.WiFiBSS
	if err := json.Unmarshal(op.Result, &bss); err != nil {
		return nil, op, fmt.Errorf("cannot decode the scan: %w", err)
	}
	return bss, op, nil
}

// WiFiConnect joins a network and returns once it is joined or has
// failed. The PSK goes to the daemon only; the journal keeps a
// fingerprint of it.
func (c *Client) WiFiConnect(ctx context.Context, n network.WiFiNetwork) (network.WiFiStatus, journal.Operation, error) {
	var st network.WiFiStatus
	op, err := c.postOperation(ctx, "/api/v1/wifi/connect", n)
	if err == nil && op.Result != nil {
		err = json.Unmarshal(op.Result, &st)
	}
	return st, op, err
}

// WiFiForget removes a known network from wpa_supplicant.
func (c *Client) WiFiForget(ctx context.Context, ssid string) (network.WiFiStatus, journal.Operation, error) {
	var st network.WiFiStatus
	op, err := c.postOperation(ctx, "/api/v1/wifi/forget", map[string]string{"ssid": ssid})
	if err == nil && op.Result != nil {
		err = json.Unmarshal(op.Result, &st)
	}
	return st, op, err
}
