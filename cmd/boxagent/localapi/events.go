package localapi

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

// Broker fans events out to subscribers. It keeps the newest events so a
// client that reconnects with Last-Event-ID misses nothing that is still
// held, and it never blocks a publisher on a slow subscriber: a subscriber
// that falls behind its buffer is dropped and reconnects.
type Broker struct {
	mu     sync.Mutex
	next   uint64
	recent []apitype.Event
	keep   int
	subs   map[*subscription]struct{}
	now    func() time.Time
	// published counts the events published, read without the lock: a
	// cache of what the events describe (the status answer) is stale
	// once it moved.
	published atomic.Uint64
}

type subscription struct {
	ch      chan apitype.Event
	dropped chan struct{}
	once    sync.Once
}

func (s *subscription) drop() { s.once.Do(func() { close(s.dropped) }) }

// NewBroker returns a broker that holds the newest keep events for replay.
func NewBroker(keep int) *Broker {
	return &Broker{keep: keep, subs: map[*subscription]struct{}{}, now: time.Now}
}

// Publish sends an event of the given type; data is marshalled to JSON.
func (b *Broker) Publish(typ string, data any) apitype.Event {
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	b.published.Store(b.next)
	ev := apitype.Event{ID: b.next, Time: b.now().UTC(), Type: typ, Data: raw}
	b.recent = append(b.recent, ev)
	if len(b.recent) > b.keep {
		b.recent = b.recent[len(b.recent)-b.keep:]
	}
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			s.drop()
			delete(b.subs, s)
		}
	}
	return ev
}

// Published is how many events were published so far. It moves after
// the state an event describes changed (domains publish after they
// change), so a value made from that state while it stood still is
// current.
func (b *Broker) Published() uint64 { return b.published.Load() }

// Subscribe returns a channel of new events, a channel closed when the
// subscriber was dropped for falling behind, and a cancel func. With
// replay, the held events with an id above after come first.
func (b *Broker) Subscribe(after uint64, replay bool) (<-chan apitype.Event, <-chan struct{}, func()) {
	s := &subscription{ch: make(chan apitype.Event, 256), dropped: make(chan struct{})}
	b.mu.Lock()
	if replay {
		for _, ev := range b.recent {
			if ev.ID > after && len(s.ch) < cap(s.ch) {
				s.ch <- ev
			}
		}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	cancel := func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}
	return s.ch, s.dropped, cancel
}

// compactEvent renders an event as one line of JSON for the SSE data field.
func compactEvent(ev apitype.Event) []byte {
	b, _ := json.Marshal(ev)
	return b
}

// Event is apitype.Event, named here too for the board tests of the
// network and deploy packages that read the stream (their owners move
// them to apitype when next they touch them).
type Event = apitype.Event
