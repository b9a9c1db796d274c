package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
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
	op, err := c.wifiLong(ctx, "/api/v1/wifi/scan", progress)
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
	op, err := c.wifiPost(ctx, "/api/v1/wifi/connect", n)
	if err == nil && op.Result != nil {
		err = json.Unmarshal(op.Result, &st)
	}
	return st, op, err
}

// WiFiForget removes a known network from wpa_supplicant.
func (c *Client) WiFiForget(ctx context.Context, ssid string) (network.WiFiStatus, journal.Operation, error) {
	var st network.WiFiStatus
	op, err := c.wifiPost(ctx, "/api/v1/wifi/forget", map[string]string{"ssid": ssid})
	if err == nil && op.Result != nil {
		err = json.Unmarshal(op.Result, &st)
	}
	return st, op, err
}

// wifiPost sends a short mutating call and returns its final record.
func (c *Client) wifiPost(ctx context.Context, path string, body any) (journal.Operation, error) {
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

// wifiLong starts a long operation (202) and follows its events until it
// ends, then returns its final record; a failed one is an *APIError.
func (c *Client) wifiLong(ctx context.Context, path string, progress func(string)) (journal.Operation, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Open the event stream first, so the end cannot slip by unseen.
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
	resp, err := c.do(ctx, "POST", path, nil)
	if err != nil {
		return journal.Operation{}, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return journal.Operation{}, err
	}
	if resp.StatusCode >= 400 {
		return journal.Operation{}, decodeError(resp.StatusCode, data)
	}
	var acc localapi.Accepted
	if err := json.Unmarshal(data, &acc); err != nil || acc.ID == 0 {
		return journal.Operation{}, fmt.Errorf("cannot decode the answer to %s: %s", path, strings.TrimSpace(string(data)))
	}
	sc := bufio.NewScanner(stream.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev localapi.Event
		var oe localapi.OperationEvent
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "operation" || json.Unmarshal(ev.Data, &oe) != nil || oe.ID != acc.ID {
			continue
		}
		if oe.Progress != nil && progress != nil {
			progress(oe.Progress.Message)
		}
		if oe.State.Final() {
			break
		}
	}
	if ctx.Err() != nil {
		return journal.Operation{}, ctx.Err()
	}
	op, err := c.Operation(context.WithoutCancel(ctx), acc.ID)
	if err != nil {
		return op, err
	}
	if !op.State.Final() {
		return op, fmt.Errorf("the event stream ended before operation %s did", strconv.FormatUint(op.ID, 10))
	}
	if op.Error != nil {
		return op, &APIError{Status: http.StatusOK, Code: op.Error.Code, Message: op.Error.Message, Hint: op.Error.Hint}
	}
	return op, nil
}
