// Package client is the typed client of the local API over its unix
// socket. The CLI and the tests use it, so they exercise the very calls
// the page makes.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// ErrUnreachable means no daemon answered on the socket.
var ErrUnreachable = errors.New("the boxagent daemon is not reachable")

// Client talks to one daemon.
type Client struct {
	socket string
	origin string
	http   *http.Client
}

// New returns a client of the daemon listening on socket. origin is
// recorded with every operation the client starts ("cli", "provision").
func New(socket, origin string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, origin: origin, http: &http.Client{Transport: tr}}
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://boxagent"+path, body)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
	ctx, method, path := req.Context(), req.Method, req.URL.Path
	req.Header.Set("Accept", "application/json")
	if c.origin != "" {
		req.Header.Set(apitype.OriginHeader, c.origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, c.socket, op.Err)
		}
		return nil, fmt.Errorf("cannot call %s %s: %w", method, path, err)
	}
	return resp, nil
}

// call does one request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, out any) error {
	resp, err := c.do(ctx, method, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("cannot read the answer to %s: %w", path, err)
	}
	if resp.StatusCode >= 400 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cannot decode the answer to %s: %w", path, err)
	}
	return nil
}

func decodeError(status int, data []byte) error {
	var body struct {
		Error *apitype.Error `json:"error"`
	}
	if err := json.Unmarshal(data, &body); err == nil && body.Error != nil && body.Error.Message != "" {
		body.Error.Status = status
		return body.Error
	}
	var op journal.Operation
	if err := json.Unmarshal(data, &op); err == nil && op.Error != nil {
		return &apitype.Error{Status: status, Code: op.Error.Code, Message: op.Error.Message, Hint: op.Error.Hint}
	}
	return &apitype.Error{Status: status, Code: "http." + strconv.Itoa(status), Message: strings.TrimSpace(string(data))}
}

// get answers a GET: every typed read is this one call.
func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var v T
	return v, c.call(ctx, "GET", path, &v)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (apitype.Status, error) {
	return get[apitype.Status](ctx, c, "/api/v1/status")
}

// Doctor runs the daemon's checks.
func (c *Client) Doctor(ctx context.Context) (apitype.Doctor, error) {
	return get[apitype.Doctor](ctx, c, "/api/v1/doctor")
}

// Operations lists journalled operations, newest first.
func (c *Client) Operations(ctx context.Context, q journal.Query) ([]journal.Operation, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatUint(q.Before, 10))
	}
	if q.Kind != "" {
		v.Set("kind", q.Kind)
	}
	if q.Origin != "" {
		v.Set("origin", q.Origin)
	}
	if q.State != "" {
		v.Set("state", string(q.State))
	}
	return get[[]journal.Operation](ctx, c, "/api/v1/operations?"+v.Encode())
}

// Operation returns one operation with its progress.
func (c *Client) Operation(ctx context.Context, id uint64) (journal.Operation, error) {
	return get[journal.Operation](ctx, c, "/api/v1/operations/"+strconv.FormatUint(id, 10))
}

// CancelOperation asks the daemon to cancel a running operation; it ends
// as cancelled soon after. Cancelling an ended one is an *apitype.Error
// (operation.finished).
func (c *Client) CancelOperation(ctx context.Context, id uint64) error {
	var ans apitype.CancelAnswer
	return c.call(ctx, "POST", "/api/v1/operations/"+strconv.FormatUint(id, 10)+"/cancel", &ans)
}

// ReloadConfig asks the daemon to re-read its config file.
func (c *Client) ReloadConfig(ctx context.Context) (journal.Operation, error) {
	var op journal.Operation
	return op, c.call(ctx, "POST", "/api/v1/config/reload", &op)
}

// Board returns the board detection in effect.
func (c *Client) Board(ctx context.Context) (board.Detection, error) {
	return get[board.Detection](ctx, c, "/api/v1/board")
}

// Boards returns the known board profiles.
func (c *Client) Boards(ctx context.Context) ([]board.Profile, error) {
	return get[[]board.Profile](ctx, c, "/api/v1/boards")
}

// Events streams new server-sent events to fn until ctx ends, the daemon
// goes away, or fn returns an error (ErrStop ends it without error).
func (c *Client) Events(ctx context.Context, fn func(apitype.Event) error) error {
	return c.events(ctx, "", fn)
}

// EventsSince is Events that first replays the events after id that the
// daemon still holds (0: all it holds), as a reconnecting client does.
func (c *Client) EventsSince(ctx context.Context, id uint64, fn func(apitype.Event) error) error {
	return c.events(ctx, strconv.FormatUint(id, 10), fn)
}

// ErrStop, returned by an Events callback, ends the stream cleanly.
var ErrStop = errors.New("stop")

func (c *Client) events(ctx context.Context, lastID string, fn func(apitype.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://boxagent/api/v1/events", nil)
	if err != nil {
		return err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		return decodeError(resp.StatusCode, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev apitype.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("cannot decode an event: %w", err)
		}
		if err := fn(ev); errors.Is(err, ErrStop) {
			return nil
		} else if err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream broken: %w", err)
	}
	return errors.New("the daemon closed the event stream")
}
