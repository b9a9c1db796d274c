package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// QMP is a client of QEMU's machine protocol: commands with replies matched
// by id, and events delivered to subscribers.
type QMP struct {
	conn net.Conn
	wmu  sync.Mutex
	enc  *json.Encoder

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan qmpMsg
	subs    map[int]chan QMPEvent
	nextSub int
	err     error // set when the reader stops
	done    chan struct{}
}

// QMPEvent is an asynchronous QMP event such as DEVICE_DELETED.
type QMPEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// QMPError is an error reply to a QMP command.
type QMPError struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

type qmpMsg struct {
	QMP    json.RawMessage `json:"QMP,omitempty"`
	Return json.RawMessage `json:"return,omitempty"`
	Error  *QMPError       `json:"error,omitempty"`
	Event  string          `json:"event,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	ID     *uint64         `json:"id,omitempty"`
}

// dialQMP takes over f (one end of a socket pair whose other end QEMU has),
// reads the greeting and leaves capabilities negotiation mode.
func dialQMP(ctx context.Context, f *os.File) (*QMP, error) {
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("cannot use the QMP socket: %w", err)
	}
	q := &QMP{conn: conn, enc: json.NewEncoder(conn), pending: map[uint64]chan qmpMsg{},
		subs: map[int]chan QMPEvent{}, done: make(chan struct{})}
	dec := json.NewDecoder(conn)
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > 30*time.Second {
		dl = time.Now().Add(30 * time.Second)
	}
	conn.SetReadDeadline(dl)
	var greet qmpMsg
	if err := dec.Decode(&greet); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot read the QMP greeting: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	go q.read(dec)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) read(dec *json.Decoder) {
	var err error
	for {
		var m qmpMsg
		if err = dec.Decode(&m); err != nil {
			break
		}
		q.mu.Lock()
		switch {
		case m.Event != "":
			ev := QMPEvent{Event: m.Event, Data: m.Data}
			for _, ch := range q.subs {
				select {
				case ch <- ev:
				default: // a subscriber that does not read loses events, not the reader
				}
			}
		case m.ID != nil:
			if ch, ok := q.pending[*m.ID]; ok {
				ch <- m
				delete(q.pending, *m.ID)
			}
		}
		q.mu.Unlock()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = errors.New("QEMU closed the QMP connection")
	}
	q.mu.Lock()
	q.err = err
	close(q.done)
	q.mu.Unlock()
}

// Close ends the connection.
func (q *QMP) Close() error { return q.conn.Close() }

// Execute runs a QMP command and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	ch := make(chan qmpMsg, 1)
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return nil, fmt.Errorf("cannot run qmp %s: %w", command, q.err)
	}
	q.nextID++
	id := q.nextID
	q.pending[id] = ch
	q.mu.Unlock()
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        uint64 `json:"id"`
	}{command, args, id}
	q.wmu.Lock()
	err := q.enc.Encode(req)
	q.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("cannot send qmp %s: %w", command, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			m.Error.Command = command
			return nil, m.Error
		}
		return m.Return, nil
	case <-q.done:
		return nil, fmt.Errorf("cannot run qmp %s: %w", command, q.err)
	case <-ctx.Done():
		q.mu.Lock()
		delete(q.pending, id)
		q.mu.Unlock()
		return nil, fmt.Errorf("cannot run qmp %s: %w", command, ctx.Err())
	}
}

// Subscribe returns a channel of events from now on; call the returned
// function to stop. Subscribe before the command whose event you wait for.
func (q *QMP) Subscribe() (<-chan QMPEvent, func()) {
	ch := make(chan QMPEvent, 64)
	q.mu.Lock()
	id := q.nextSub
	q.nextSub++
	q.subs[id] = ch
	q.mu.Unlock()
	return ch, func() {
		q.mu.Lock()
		delete(q.subs, id)
		q.mu.Unlock()
	}
}

// WaitEvent waits on a subscription for the event named name whose data
// satisfies match (nil: any).
func (q *QMP) WaitEvent(ctx context.Context, ch <-chan QMPEvent, name string, match func(json.RawMessage) bool) (QMPEvent, error) {
	for {
		select {
		case ev := <-ch:
			if ev.Event == name && (match == nil || match(ev.Data)) {
				return ev, nil
			}
		case <-q.done:
			return QMPEvent{}, fmt.Errorf("cannot wait for %s: %w", name, q.err)
		case <-ctx.Done():
			return QMPEvent{}, fmt.Errorf("cannot wait for %s: %w", name, ctx.Err())
		}
	}
}

// PlugStick attaches image as a removable USB stick on the xHCI controller;
// name identifies it for UnplugStick.
func (q *QMP) PlugStick(ctx context.Context, name, image string) error {
	node, dev := "stick-"+name, "usb-"+name
	if _, err := q.Execute(ctx, "blockdev-add", map[string]any{
		"node-name": node, "driver": "raw",
		"file": map[string]any{"driver": "file", "filename": image},
	}); err != nil {
		return fmt.Errorf("cannot plug stick %s: %w", name, err)
	}
	serial := "LAB" + name
	if len(serial) > 20 {
		serial = serial[:20]
	}
	if _, err := q.Execute(ctx, "device_add", map[string]any{
		"driver": "usb-storage", "bus": "xhci.0", "drive": node, "id": dev,
		"removable": true, "serial": serial,
	}); err != nil {
		q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node})
		return fmt.Errorf("cannot plug stick %s: %w", name, err)
	}
	return nil
}

// UnplugStick detaches the stick: device_del, wait for DEVICE_DELETED (the
// guest has let go), then blockdev-del (earlier it is "in use").
func (q *QMP) UnplugStick(ctx context.Context, name string) error {
	node, dev := "stick-"+name, "usb-"+name
	ch, stop := q.Subscribe()
	defer stop()
	if _, err := q.Execute(ctx, "device_del", map[string]any{"id": dev}); err != nil {
		return fmt.Errorf("cannot unplug stick %s: %w", name, err)
	}
	_, err := q.WaitEvent(ctx, ch, "DEVICE_DELETED", func(d json.RawMessage) bool {
		var v struct {
			Device string `json:"device"`
		}
		return json.Unmarshal(d, &v) == nil && v.Device == dev
	})
	if err != nil {
		return fmt.Errorf("cannot unplug stick %s: %w", name, err)
	}
	if _, err := q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node}); err != nil {
		return fmt.Errorf("cannot release stick %s: %w", name, err)
	}
	return nil
}
