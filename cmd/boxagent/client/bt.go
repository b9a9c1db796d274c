package client

import (
	"context"
	"net/url"
	"time"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// BtAdapters lists the Bluetooth adapters.
func (c *Client) BtAdapters(ctx context.Context) ([]bluetooth.Adapter, error) {
	return get[[]bluetooth.Adapter](ctx, c, "/api/v1/bt/adapters")
}

// BtDevices lists the devices the adapter knows, headsets first.
func (c *Client) BtDevices(ctx context.Context) ([]bluetooth.Device, error) {
	return get[[]bluetooth.Device](ctx, c, "/api/v1/bt/devices")
}

// BtDevice returns one device.
func (c *Client) BtDevice(ctx context.Context, address string) (bluetooth.Device, error) {
	return get[bluetooth.Device](ctx, c, "/api/v1/bt/devices/"+url.PathEscape(address))
}

// BtScan scans for timeout (0: the daemon's default), or until the device
// until names (an address or a name; "" for none) is seen, and returns
// the devices seen, headsets first; progress gets each find as it comes.
func (c *Client) BtScan(ctx context.Context, timeout time.Duration, until string, progress func(journal.Progress)) ([]bluetooth.Device, journal.Operation, error) {
	body := apitype.BtScanRequest{Timeout: max(timeout, 0).Seconds(), Until: until}
	return result[[]bluetooth.Device](c.runOperation(ctx, "/api/v1/bt/scan", body, progress))
}

// BtPair pairs, trusts and connects a device, reporting each step.
func (c *Client) BtPair(ctx context.Context, address string, progress func(journal.Progress)) (bluetooth.Device, journal.Operation, error) {
	return result[bluetooth.Device](c.runOperation(ctx, "/api/v1/bt/pair", apitype.BtAddressRequest{Address: address}, progress))
}

// BtConnect connects a paired device.
func (c *Client) BtConnect(ctx context.Context, address string) (bluetooth.Device, journal.Operation, error) {
	return c.btDevicePost(ctx, "/api/v1/bt/connect", address)
}

// BtDisconnect disconnects a device; auto-reconnect then leaves it alone.
func (c *Client) BtDisconnect(ctx context.Context, address string) (bluetooth.Device, journal.Operation, error) {
	return c.btDevicePost(ctx, "/api/v1/bt/disconnect", address)
}

// BtRemove forgets a device and its pairing.
func (c *Client) BtRemove(ctx context.Context, address string) (apitype.BtRemoveResult, journal.Operation, error) {
	return result[apitype.BtRemoveResult](c.postOperation(ctx, "/api/v1/bt/remove", apitype.BtAddressRequest{Address: address}))
}

// BtPairable opens (for timeout; 0: the configured window) or closes the
// pairing window.
func (c *Client) BtPairable(ctx context.Context, on bool, timeout time.Duration) (apitype.BtPairableResult, journal.Operation, error) {
	body := apitype.BtPairableRequest{On: on, Timeout: max(timeout, 0).Seconds()}
	return result[apitype.BtPairableResult](c.postOperation(ctx, "/api/v1/bt/pairable", body))
}

// BtPower powers an adapter ("" for the configured one) on or off.
func (c *Client) BtPower(ctx context.Context, adapter string, on bool) (bluetooth.Adapter, journal.Operation, error) {
	body := apitype.BtPowerRequest{Adapter: adapter, On: on}
	return result[bluetooth.Adapter](c.postOperation(ctx, "/api/v1/bt/power", body))
}

// BtAutoConnect turns auto-connect of a headset on or off: the agent
// saves it in the config file ([[bluetooth.headset]] auto_connect) and
// reloads.
func (c *Client) BtAutoConnect(ctx context.Context, address string, on bool) (apitype.BtAutoConnectResult, journal.Operation, error) {
	return result[apitype.BtAutoConnectResult](c.postOperation(ctx, "/api/v1/bt/autoconnect", apitype.BtAutoConnectRequest{Address: address, On: on}))
}

// BtHeadsets lists the configured headsets with their auto-connect flag.
func (c *Client) BtHeadsets(ctx context.Context) ([]bluetooth.Headset, error) {
	return get[[]bluetooth.Headset](ctx, c, "/api/v1/bt/autoconnect")
}

func (c *Client) btDevicePost(ctx context.Context, path, address string) (bluetooth.Device, journal.Operation, error) {
	return result[bluetooth.Device](c.postOperation(ctx, path, apitype.BtAddressRequest{Address: address}))
}
