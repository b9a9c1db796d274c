package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// NewTransport returns a client whose calls go through rt instead of the
// unix socket: the fleet's MQTT transport, so every command of the CLI
// works on a remote box unchanged. name stands for the socket in errors.
func NewTransport(rt http.RoundTripper, name, origin string) *Client {
	return &Client{socket: name, origin: origin, http: &http.Client{Transport: rt}}
}

// FleetTransport carries API calls to one box as signed fleet commands
// and brings its reply back as the HTTP answer. The event stream is the
// box's journal records as they end: enough for a long operation's end,
// not its progress.
type FleetTransport struct {
	Operator *fleet.Operator
	Device   string
}

// RoundTrip implements http.RoundTripper.
func (t *FleetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == "GET" && req.URL.Path == "/api/v1/events" {
		return t.events(req)
	}
	var body json.RawMessage
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(b)) > 0 {
			body = b
		}
	}
	r, err := t.Operator.Send(req.Context(), t.Device, fleet.Command{Method: req.Method, Path: req.URL.RequestURI(), Body: body})
	if err != nil {
		return nil, err
	}
	return answer(req, r.Status, r.Body), nil
}

func answer(req *http.Request, status int, body []byte) *http.Response {
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(bytes.NewReader(body)),
		Request: req, ContentLength: int64(len(body)),
	}
}

// events streams the box's ended operations as "operation" events.
func (t *FleetTransport) events(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	go func() {
		var n uint64
		err := t.Operator.Watch(req.Context(), t.Device, []string{"ops"}, func(m fleet.Message) {
			var op journal.Operation
			if json.Unmarshal(m.Payload, &op) != nil {
				return
			}
			n++
			data, _ := json.Marshal(apitype.OperationEvent{ID: op.ID, Kind: op.Kind, State: op.State, Error: op.Error})
			ev, _ := json.Marshal(apitype.Event{ID: n, Time: op.Started, Type: "operation", Data: data})
			fmt.Fprintf(pw, "id: %d\nevent: operation\ndata: %s\n\n", n, ev)
		})
		pw.CloseWithError(err)
	}()
	resp := answer(req, http.StatusOK, nil)
	resp.Header.Set("Content-Type", "text/event-stream")
	resp.Body, resp.ContentLength = pr, -1
	return resp, nil
}

// CaptureTransport answers nothing: it records the first call a command
// makes (its event stream aside, left open) and fails it with
// ErrCaptured, so a command line can become a group command.
type CaptureTransport struct {
	Method, Path string
	Body         json.RawMessage
}

// ErrCaptured ends a command whose call CaptureTransport took.
var ErrCaptured = fmt.Errorf("captured")

// RoundTrip implements http.RoundTripper.
func (t *CaptureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == "GET" && req.URL.Path == "/api/v1/events" {
		pr, pw := io.Pipe()
		go func() { <-req.Context().Done(); pw.Close() }()
		resp := answer(req, http.StatusOK, nil)
		resp.Body = pr
		return resp, nil
	}
	if t.Method == "" {
		t.Method, t.Path = req.Method, req.URL.RequestURI()
		if req.Body != nil {
			b, _ := io.ReadAll(req.Body)
			if len(bytes.TrimSpace(b)) > 0 {
				t.Body = b
			}
		}
	}
	return nil, ErrCaptured
}
