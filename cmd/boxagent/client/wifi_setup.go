package client

import (
	"context"
	"encoding/json"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/network"
)

// WiFiSetup returns the setup hotspot's state; over the unix socket it
// holds the hotspot's password while the hotspot is open.
func (c *Client) WiFiSetup(ctx context.Context) (network.WiFiSetupStatus, error) {
	var s network.WiFiSetupStatus
	return s, c.call(ctx, "GET", "/api/v1/wifi/setup", &s)
}

// WiFiSetupStart opens the setup hotspot (a no-op when it is open) and
// returns its state, without the password (the journal keeps the
// result): WiFiSetup reads it.
func (c *Client) WiFiSetupStart(ctx context.Context) (network.WiFiSetupStatus, journal.Operation, error) {
	return c.wifiSetupOp(ctx, "/api/v1/wifi/setup/start")
}

// WiFiSetupStop closes the setup hotspot; the saved networks are joined
// again.
func (c *Client) WiFiSetupStop(ctx context.Context) (network.WiFiSetupStatus, journal.Operation, error) {
	return c.wifiSetupOp(ctx, "/api/v1/wifi/setup/stop")
}

func (c *Client) wifiSetupOp(ctx context.Context, path string) (network.WiFiSetupStatus, journal.Operation, error) {
	var st network.WiFiSetupStatus
	op, err := c.postOperation(ctx, path, nil)
	if err == nil && op.Result != nil {
		err = json.Unmarshal(op.Result, &st)
	}
	return st, op, err
}
