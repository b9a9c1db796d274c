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

	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
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
	op, err := c.audioPost(ctx, "/api/v1/audio/cards/"+url.PathEscape(card)+"/mode", map[string]string{"mode": mode})
	if err == nil {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}

// AudioDefault makes a sink or source (kind) the default device.
func (c *Client) AudioDefault(ctx context.Context, kind, name string) (journal.Operation, error) {
	return c.audioPost(ctx, "/api/v1/audio/default", map[string]string{"kind": kind, "name": name})
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
	op, err := c.audioPost(ctx, "/api/v1/audio/volume", body)
	if err == nil {
		err = json.Unmarshal(op.Result, &d)
	}
	return d, op, err
}

// AudioTestRequest is what POST /api/v1/audio/test takes.
type AudioTestRequest struct {
	Sink      string  `json:"sink,omitempty"`
	Source    string  `json:"source,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"`
	Play      *bool   `json:"play,omitempty"`
	Frequency float64 `json:"frequency,omitempty"`
}

// AudioTest runs the play-and-record test, a long operation: progress is
// called with each progress event until it ends.
func (c *Client) AudioTest(ctx context.Context, req AudioTestRequest, progress func(journal.Progress)) (audio.TestResult, journal.Operation, error) {
	var res audio.TestResult
	op, err := c.audioLong(ctx, "/api/v1/audio/test", req, progress)
	if err == nil {
		err = json.Unmarshal(op.Result, &res)
	}
	return res, op, err
}

// audioPost sends a short mutating call with a JSON body and returns its
// final record; a failed one is an *APIError.
func (c *Client) audioPost(ctx context.Context, path string, body any) (journal.Operation, error) {
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

// audioLong starts a long operation (202) with a JSON body, follows its events
// until it ends, and returns its final record.
func (c *Client) audioLong(ctx context.Context, path string, body any, progress func(journal.Progress)) (journal.Operation, error) {
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
