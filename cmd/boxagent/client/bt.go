package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
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

// BtScan scans for timeout (0: the daemon's default) and returns the
// devices seen, headsets first; progress gets each find as it comes.
func (c *Client) BtScan(ctx context.Context, timeout time.Duration, progress func(journal.Progress)) ([]bluetooth.Device, journal.Operation, error) {
	body := map[string]float64{}
	if timeout > 0 {
		body["timeout"] = timeout.Seconds()
	}
	var out []bluetooth.Device
	op, err := c.btLong(ctx, "/api/v1/bt/scan", body, progress)
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &out)
	}
	return out, op, err
}

// BtPair pairs, trusts and connects a device, reporting each step.
func (c *Client) BtPair(ctx context.Context, address string, progress func(journal.Progress)) (bluetooth.Device, journal.Operation, error) {
	var out bluetooth.Device
	op, err := c.btLong(ctx, "/api/v1/bt/pair", map[string]string{"address": address}, progress)
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
	return c.btPost(ctx, "/api/v1/bt/remove", map[string]string{"address": address})
}

// BtPairableResult is the answer of BtPairable.
type BtPairableResult struct {
	Adapter bluetooth.Adapter `json:"adapter"`
	Until   *time.Time        `json:"until,omitempty"`
}

// BtPairable opens (for timeout; 0: the configured window) or closes the
// pairing window.
func (c *Client) BtPairable(ctx context.Context, on bool, timeout time.Duration) (BtPairableResult, journal.Operation, error) {
	body := map[string]any{"on": on}
	if timeout > 0 {
		body["timeout"] = timeout.Seconds()
	}
	var res BtPairableResult
	op, err := c.btPost(ctx, "/api/v1/bt/pairable", body)
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}

func (c *Client) btDevicePost(ctx context.Context, path, address string) (bluetooth.Device, journal.Operation, error) {
	var out bluetooth.Device
	op, err := c.btPost(ctx, path, map[string]string{"address": address})
	if err == nil && len(op.Result) > 0 {
		err = json.Unmarshal(op.Result, &out)
	}
	return out, op, err
}

// btPost sends a short mutating call with a JSON body and returns its
// final record; a failed one is an *APIError.
func (c *Client) btPost(ctx context.Context, path string, body any) (journal.Operation, error) {
	var op journal.Operation
	data, err := json.Marshal(body)
	if err != nil {
		return op, err
	}
	resp, err := c.do(ctx, "POST", path, bytes.NewReader(data))
	if err != nil {
		return op, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return op, fmt.Errorf("cannot read the answer to %s: %w", path, err)
	}
	if resp.StatusCode >= 400 {
		json.Unmarshal(raw, &op)
		return op, decodeError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &op); err != nil {
		return op, fmt.Errorf("cannot decode the answer to %s: %w", path, err)
	}
	return op, nil
}

// btLong starts a long operation (202), follows its events until it ends,
// and returns its final record.
func (c *Client) btLong(ctx context.Context, path string, body any, progress func(journal.Progress)) (journal.Operation, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The event stream opens first, so the end cannot slip by unseen.
	req, err := http.NewRequestWithContext(ctx, "GET", "http://boxagent/api/v1/events", nil)
	if err != nil {
		return journal.Operation{}, err
	}
	stream, err := c.send(req)
	if err != nil {
		return journal.Operation{}, err
	}
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(stream.Body)
		return journal.Operation{}, decodeError(stream.StatusCode, data)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return journal.Operation{}, err
	}
	resp, err := c.do(ctx, "POST", path, bytes.NewReader(data))
	if err != nil {
		return journal.Operation{}, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return journal.Operation{}, err
	}
	if resp.StatusCode >= 400 {
		return journal.Operation{}, decodeError(resp.StatusCode, raw)
	}
	var acc localapi.Accepted
	if err := json.Unmarshal(raw, &acc); err != nil || acc.ID == 0 {
		return journal.Operation{}, fmt.Errorf("cannot decode the answer to %s: %s", path, strings.TrimSpace(string(raw)))
	}
	sc := bufio.NewScanner(stream.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev localapi.Event
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "operation" {
			continue
		}
		var oe localapi.OperationEvent
		if json.Unmarshal(ev.Data, &oe) != nil || oe.ID != acc.ID {
			continue
		}
		if oe.Progress != nil && progress != nil {
			progress(*oe.Progress)
		}
		if oe.State != journal.StateRunning && oe.State != "" {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return journal.Operation{}, err
	}
	op, err := c.Operation(ctx, acc.ID)
	if err != nil {
		return op, err
	}
	if op.State == journal.StateRunning {
		return op, errors.New("the daemon closed the event stream before operation " + strconv.FormatUint(acc.ID, 10) + " ended")
	}
	if op.Error != nil {
		return op, &APIError{Code: op.Error.Code, Message: op.Error.Message, Hint: op.Error.Hint}
	}
	return op, nil
}
