package client

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// BtAdapters lists the Bluetooth adapters.
func (c *Client) BtAdapters(ctx context.Context) ([]bluetooth.Adapter, error) {
	var out []bluetooth.Adapter
	return out, c.call(ctx, "GET", "/api/v1/bt/adapters", &out)
}

// BtDevices lists the devices the adapter knows, headsets first.
func (c *Client) BtDevices(ctx context.Context) ([]bluetooth.Device, error) {
	var out []bluetooth.Device
	return out, c.call(ctx, "GET", "/api/v1/bt/devices", &out)
}

// BtDevice returns one device.
func (c *Client) BtDevice(ctx context.Context, address string) (bluetooth.Device, error) {
	var out bluetooth.Device
	return out, c.call(ctx, "GET", "/api/v1/bt/devices/"+url.PathEscape(address), &out)
}

// BtScan scans for timeout (0: the daemon's default), or until the device
// until names (an address or a name; "" for none) is seen, and returns
// the devices seen, headsets first; progress gets each find as it comes.
func (c *Client) BtScan(ctx context.Context, timeout time.Duration, until string, progress func(journal.Progress)) ([]bluetooth.Device, journal.Operation, error) {
	body := map[string]any{}
	if timeout > 0 {
		body["timeout"] = timeout.Seconds()
	}
	if until != "" {
		body["until"] = until
	}
	var out []bluetooth.Device
	op, err := c.runOperation(ctx, "/api/v1/bt/scan", body, progress)
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &out)
	}
	return out, op, err
}

// BtPair pairs, trusts and connects a device, reporting each step.
func (c *Client) BtPair(ctx context.Context, address string, progress func(journal.Progress)) (bluetooth.Device, journal.Operation, error) {
	var out bluetooth.Device
	op, err := c.runOperation(ctx, "/api/v1/bt/pair", map[string]string{"address": address}, progress)
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &out)
	}
	return out, op, err
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
func (c *Client) BtRemove(ctx context.Context, address string) (journal.Operation, error) {
	return c.postOperation(ctx, "/api/v1/bt/remove", map[string]string{"address": address})
}

// BtPairable opens (for timeout; 0: the configured window) or closes the
// pairing window.
func (c *Client) BtPairable(ctx context.Context, on bool, timeout time.Duration) (apitype.BtPairableResult, journal.Operation, error) {
	body := map[string]any{"on": on}
	if timeout > 0 {
		body["timeout"] = timeout.Seconds()
	}
	var res apitype.BtPairableResult
	op, err := c.postOperation(ctx, "/api/v1/bt/pairable", body)
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}

// BtPower powers an adapter ("" for the configured one) on or off.
func (c *Client) BtPower(ctx context.Context, adapter string, on bool) (bluetooth.Adapter, journal.Operation, error) {
	var out bluetooth.Adapter
	body := map[string]any{"on": on}
	if adapter != "" {
		body["adapter"] = adapter
	}
	op, err := c.postOperation(ctx, "/api/v1/bt/power", body)
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &out)
	}
	return out, op, err
}

// BtAutoConnect turns auto-connect of a headset on or off: the agent
// saves it in the config file ([[bluetooth.headset]] auto_connect) and
// reloads.
func (c *Client) BtAutoConnect(ctx context.Context, address string, on bool) (apitype.BtAutoConnectResult, journal.Operation, error) {
	var res apitype.BtAutoConnectResult
	op, err := c.postOperation(ctx, "/api/v1/bt/autoconnect", map[string]any{"address": address, "on": on})
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}

// BtHeadsets lists the configured headsets with their auto-connect flag.
func (c *Client) BtHeadsets(ctx context.Context) ([]bluetooth.Headset, error) {
	var out []bluetooth.Headset
	return out, c.call(ctx, "GET", "/api/v1/bt/autoconnect", &out)
}

func (c *Client) btDevicePost(ctx context.Context, path, address string) (bluetooth.Device, journal.Operation, error) {
	var out bluetooth.Device
	op, err := c.postOperation(ctx, path, map[string]string{"address": address})
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &out)
	}
	return out, op, err
}
