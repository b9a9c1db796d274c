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
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// Mutating calls: every domain's client uses these two, so a short call
// and a long one behave the same for every noun.

// runOperation starts a long operation (202) with a JSON body, follows its events
// until it ends, and returns its final record.
func (c *Client) runOperation(ctx context.Context, path string, body any, progress func(journal.Progress)) (journal.Operation, error) {
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
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return journal.Operation{}, err
		}
		rd = bytes.NewReader(data)
	}
	resp, err := c.do(ctx, "POST", path, rd)
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
	var acc apitype.Accepted
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
		var ev apitype.Event
		if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "operation" {
			continue
		}
		var oe apitype.OperationEvent
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
	// The stream ended: the operation did, or the agent went away (a
	// crash, a restart) and the next start marks it interrupted.
	op, err := c.Operation(ctx, acc.ID)
	if err != nil {
		if ctx.Err() != nil {
			return op, ctx.Err()
		}
		return op, &InterruptedError{ID: acc.ID, Err: err}
	}
	if op.State == journal.StateRunning {
		return op, &InterruptedError{ID: acc.ID, Err: errors.New("the event stream closed before the operation ended")}
	}
	if op.Error != nil {
		return op, &apitype.Error{Code: op.Error.Code, Message: op.Error.Message, Hint: op.Error.Hint}
	}
	return op, nil
}

// InterruptedError is a long operation the client lost: the agent stopped
// (or closed the stream) before it ended. What it did is in the journal.
type InterruptedError struct {
	ID  uint64
	Err error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("the agent stopped during operation %d (%v): boxagent history %d shows what it did", e.ID, e.Err, e.ID)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// postOperation is callOperation with POST.
func (c *Client) postOperation(ctx context.Context, path string, body any) (journal.Operation, error) {
	return c.callOperation(ctx, "POST", path, body)
}

// callOperation sends a short mutating call (with a JSON body unless body
// is nil) and returns its final record; a failed operation is an *apitype.Error.
func (c *Client) callOperation(ctx context.Context, method, path string, body any) (journal.Operation, error) {
	var op journal.Operation
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return op, err
		}
		rd = bytes.NewReader(data)
	}
	resp, err := c.do(ctx, method, path, rd)
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

// result decodes the result of a finished operation: every typed call
// that starts one ends with it. An operation that failed, or that ended
// without a result, leaves the zero value.
func result[T any](op journal.Operation, err error) (T, journal.Operation, error) {
	var v T
	if err == nil && len(op.Result) > 0 {
		if jerr := json.Unmarshal(op.Result, &v); jerr != nil {
			err = fmt.Errorf("cannot decode the result of operation %d: %w", op.ID, jerr)
		}
	}
	return v, op, err
}
