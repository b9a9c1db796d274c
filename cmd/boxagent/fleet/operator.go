package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// OperatorOptions connect an operator (the CLI, a test, the simulator).
type OperatorOptions struct {
	Brokers            []string
	TLS                *tls.Config
	Username, Password string
	// ClientID defaults to "operator-" and random hex.
	ClientID string
	Prefix   string
	// Key signs commands; nil allows reading only.
	Key ed25519.PrivateKey
	// Resend is how often an unanswered command is sent again (default
	// 5 s): the box answers a repeat from its journal, so a command the
	// broker lost is still run once.
	Resend time.Duration
	// TTL is how long a command stays valid (default 10 min).
	TTL time.Duration
	// Persistent keeps the session at the broker (ClientID must be
	// given): an archive of records that must see every one, across its
	// own outages and the broker's.
	Persistent bool
}

// Operator is the operator's end of the fleet: commands out, replies,
// states and records in.
type Operator struct {
	o      OperatorOptions
	client mqtt.Client

	mu       sync.Mutex
	waiters  map[string]chan Reply
	watchers map[*watcher]bool
}

// watcher is one Watch: every message goes through one handler, because
// paho keeps one callback per topic filter and two watches of the same
// filter would otherwise steal each other's messages.
type watcher struct {
	device string // "+" for all
	kinds  map[string]bool
	ch     chan Message
	done   chan struct{} // closed when the watch ends
}

// Message is one message of a box, as watched.
type Message struct {
	Device string
	// Kind is the topic's last level: state, status, ops or reply.
	Kind    string
	Payload []byte
}

// NewCommandID is a random command id.
func NewCommandID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DialOperator connects and subscribes to every box's replies.
func DialOperator(ctx context.Context, oo OperatorOptions) (*Operator, error) {
	if oo.Prefix == "" {
		oo.Prefix = "boxagent"
	}
	if oo.ClientID == "" {
		oo.ClientID = "operator-" + NewCommandID()[:12]
	}
	if oo.Resend <= 0 {
		oo.Resend = 5 * time.Second
	}
	if oo.TTL <= 0 {
		oo.TTL = 10 * time.Minute
	}
	op := &Operator{o: oo, waiters: map[string]chan Reply{}, watchers: map[*watcher]bool{}}
	opts := mqtt.NewClientOptions().SetClientID(oo.ClientID).SetProtocolVersion(4).
		SetCleanSession(!oo.Persistent).SetTLSConfig(oo.TLS).SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectRetryInterval(500 * time.Millisecond).
		SetMaxReconnectInterval(5 * time.Second).SetOrderMatters(false).
		SetDefaultPublishHandler(op.dispatch).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Clean session: subscribe again on every connect.
			c.Subscribe(oo.Prefix+"/+/reply", 1, nil)
			op.mu.Lock()
			subs := map[string]byte{}
			for w := range op.watchers {
				for k := range w.kinds {
					subs[oo.Prefix+"/"+w.device+"/"+k] = 1
				}
			}
			op.mu.Unlock()
			if len(subs) > 0 {
				c.SubscribeMultiple(subs, nil)
			}
		})
	for _, b := range oo.Brokers {
		opts.AddBroker(b)
	}
	if oo.Username != "" {
		opts.SetUsername(oo.Username).SetPassword(oo.Password)
	}
	op.client = mqtt.NewClient(opts)
	t := op.client.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("cannot connect to the fleet broker: %w", err)
		}
	case <-ctx.Done():
		op.client.Disconnect(0)
		return nil, ctx.Err()
	}
	// Connect returns at once with retry on; wait for the subscription.
	for !op.client.IsConnectionOpen() {
		select {
		case <-ctx.Done():
			op.client.Disconnect(0)
			return nil, fmt.Errorf("cannot connect to the fleet broker: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return op, nil
}

// Close disconnects.
func (op *Operator) Close() { op.client.Disconnect(250) }

// dispatch hands every message to the command waiting for it and to the
// watches it matches.
func (op *Operator) dispatch(_ mqtt.Client, m mqtt.Message) {
	levels := strings.Split(strings.TrimPrefix(m.Topic(), op.o.Prefix+"/"), "/")
	if len(levels) != 2 {
		return
	}
	msg := Message{Device: levels[0], Kind: levels[1], Payload: m.Payload()}
	op.mu.Lock()
	if msg.Kind == "reply" {
		var r Reply
		if json.Unmarshal(m.Payload(), &r) == nil && op.waiters[r.ID] != nil {
			select {
			case op.waiters[r.ID] <- r:
			default: // a waiter that has what it needs
			}
		}
	}
	var to []*watcher
	for w := range op.watchers {
		if (w.device == "+" || w.device == msg.Device) && w.kinds[msg.Kind] {
			to = append(to, w)
		}
	}
	op.mu.Unlock()
	for _, w := range to {
		// Wait for a slow watcher (an archive must not lose records
		// here): paho runs each message's handler on its own goroutine,
		// so only this message waits.
		select {
		case w.ch <- msg:
		case <-w.done:
		}
	}
}

// Send signs c for one box, sends it until the box answers, and returns
// the answer. c.ID, Target and Expires are filled in when empty.
func (op *Operator) Send(ctx context.Context, device string, c Command) (Reply, error) {
	c.Target = device
	ch, msg, err := op.prepare(&c, 1)
	if err != nil {
		return Reply{}, err
	}
	defer op.forget(c.ID)
	topic := Topics{Prefix: op.o.Prefix, ID: device}.Cmd()
	tick := time.NewTicker(op.o.Resend)
	defer tick.Stop()
	for {
		op.client.Publish(topic, 1, false, msg)
		select {
		case r := <-ch:
			if r.Device == device {
				return r, nil
			}
		case <-tick.C:
		case <-ctx.Done():
			return Reply{}, fmt.Errorf("no answer from %s to command %s: %w", device, c.ID, ctx.Err())
		}
	}
}

// SendGroup signs c for a group and sends it until every box of devices
// has answered or ctx ends; answers go to fn as they come, once per box.
// It returns the boxes that did not answer.
func (op *Operator) SendGroup(ctx context.Context, group string, devices []string, c Command, fn func(Reply)) ([]string, error) {
	c.Target = GroupLevel + "/" + group
	ch, msg, err := op.prepare(&c, len(devices)+16)
	if err != nil {
		return nil, err
	}
	defer op.forget(c.ID)
	waiting := map[string]bool{}
	for _, d := range devices {
		waiting[d] = true
	}
	topic := GroupCmd(op.o.Prefix, group)
	// A group command is resent after its window: every box has had its
	// chance by then, and the boxes that did answer it are answered again
	// from their journal (not run again).
	resend := op.o.Resend + time.Duration(c.WindowMS)*time.Millisecond
	tick := time.NewTicker(resend)
	defer tick.Stop()
	op.client.Publish(topic, 1, false, msg)
	for len(waiting) > 0 {
		select {
		case r := <-ch:
			if waiting[r.Device] {
				delete(waiting, r.Device)
				fn(r)
			}
		case <-tick.C:
			op.client.Publish(topic, 1, false, msg)
		case <-ctx.Done():
			var left []string
			for d := range waiting {
				left = append(left, d)
			}
			return left, ctx.Err()
		}
	}
	return nil, nil
}

func (op *Operator) prepare(c *Command, buf int) (chan Reply, []byte, error) {
	if op.o.Key == nil {
		return nil, nil, errors.New("no operator key to sign the command with (--key)")
	}
	if c.ID == "" {
		c.ID = NewCommandID()
	}
	if c.Expires.IsZero() {
		c.Expires = time.Now().Add(op.o.TTL).UTC().Round(time.Second)
	}
	msg, err := Sign(*c, op.o.Key)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan Reply, buf)
	op.mu.Lock()
	op.waiters[c.ID] = ch
	op.mu.Unlock()
	return ch, msg, nil
}

func (op *Operator) forget(id string) {
	op.mu.Lock()
	delete(op.waiters, id)
	op.mu.Unlock()
}

// Watch subscribes to the kinds of messages (state, status, ops, reply)
// of one box or, with device "+", of all, and calls fn for each until
// ctx ends. Retained states and statuses come first.
func (op *Operator) Watch(ctx context.Context, device string, kinds []string, fn func(Message)) error {
	w := &watcher{device: device, kinds: map[string]bool{}, ch: make(chan Message, 1024), done: make(chan struct{})}
	subs := map[string]byte{}
	for _, k := range kinds {
		w.kinds[k] = true
		subs[op.o.Prefix+"/"+device+"/"+k] = 1
	}
	op.mu.Lock()
	op.watchers[w] = true
	op.mu.Unlock()
	defer func() {
		op.mu.Lock()
		delete(op.watchers, w)
		op.mu.Unlock()
	}()
	defer close(w.done) // first: a dispatch waiting on it lets go of the lock

	// Subscribing again to a filter makes the broker send its retained
	// messages again: this watch gets them too.
	t := op.client.SubscribeMultiple(subs, nil)
	if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		return fmt.Errorf("cannot subscribe to the boxes' topics: %v", t.Error())
	}
	for {
		select {
		case m := <-w.ch:
			fn(m)
		case <-ctx.Done():
			return nil
		}
	}
}

// Devices reads the retained states: every box the broker knows of, the
// ones offline too. It waits until no state has come for quiet.
func (op *Operator) Devices(ctx context.Context, quiet time.Duration) ([]Presence, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var out []Presence
	last := make(chan struct{}, 1)
	go func() {
		_ = op.Watch(ctx, "+", []string{"state"}, func(m Message) {
			var p Presence
			if json.Unmarshal(m.Payload, &p) == nil {
				mu.Lock()
				out = append(out, p)
				mu.Unlock()
				wake(last)
			}
		})
	}()
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		select {
		case <-last:
			t.Reset(quiet)
		case <-t.C:
			mu.Lock()
			defer mu.Unlock()
			return out, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Missing asks a box for its ended records that have is missing, newest
// first, down to the oldest id in have: a broker may lose a message it
// acknowledged (a NATS node killed mid-burst lost up to 7 of 264 records to a
// persistent subscriber), and record ids have no gaps of their own, so a
// receiver that sees one asks. The box must allow GET /api/v1/operations.
func (op *Operator) Missing(ctx context.Context, device string, have map[uint64]bool) ([]journal.Operation, error) {
	low := uint64(0)
	for id := range have {
		if low == 0 || id < low {
			low = id
		}
	}
	var out []journal.Operation
	before := uint64(0)
	for {
		path := "/api/v1/operations?limit=50"
		if before > 0 {
			path += "&before=" + strconv.FormatUint(before, 10)
		}
		r, err := op.Send(ctx, device, Command{Method: "GET", Path: path})
		if err != nil {
			return out, err
		}
		var page []journal.Operation
		if r.Status != 200 || json.Unmarshal(r.Body, &page) != nil {
			return out, fmt.Errorf("%s answered %d: %s", device, r.Status, r.Body)
		}
		for _, o := range page {
			if o.State.Final() && !have[o.ID] && o.ID >= low {
				out = append(out, o)
			}
		}
		if len(page) == 0 || page[len(page)-1].ID <= low {
			return out, nil
		}
		before = page[len(page)-1].ID
	}
}
