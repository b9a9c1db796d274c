package client

import (
	"context"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/wifi"
)

// WiFiSetup returns the setup hotspot's state; over the unix socket it
// holds the hotspot's password while the hotspot is open.
func (c *Client) WiFiSetup(ctx context.Context) (wifi.SetupStatus, error) {
	return get[wifi.SetupStatus](ctx, c, "/api/v1/wifi/setup")
}

// WiFiSetupStart opens the setup hotspot (a no-op when it is open) and
// returns its state, without the password (the journal keeps the
// result): WiFiSetup reads it.
func (c *Client) WiFiSetupStart(ctx context.Context) (wifi.SetupStatus, journal.Operation, error) {
	return c.wifiSetupOp(ctx, "/api/v1/wifi/setup/start")
}

// WiFiSetupStop closes the setup hotspot; the saved networks are joined
// again.
func (c *Client) WiFiSetupStop(ctx context.Context) (wifi.SetupStatus, journal.Operation, error) {
	return c.wifiSetupOp(ctx, "/api/v1/wifi/setup/stop")
}

func (c *Client) wifiSetupOp(ctx context.Context, path string) (wifi.SetupStatus, journal.Operation, error) {
	return result[wifi.SetupStatus](c.postOperation(ctx, path, nil))
}
