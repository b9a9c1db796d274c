package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// Journal is what the link needs of the operations journal
// (*journal.Store): records to send, commands already run, refusals.
type Journal interface {
	After(id uint64, limit int) ([]journal.Operation, error)
	List(q journal.Query) ([]journal.Operation, error)
	Begin(op journal.Operation) (journal.Operation, error)
	Finish(id uint64, result json.RawMessage, failure *journal.Failure, state journal.State) (journal.Operation, error)
}

// Events is the agent's event broker (*localapi.Broker): every change
// the link publishes follows one of its events, so the link never polls.
type Events interface {
	Subscribe(after uint64, replay bool) (<-chan apitype.Event, <-chan struct{}, func())
}

var (
	_ Journal = (*journal.Store)(nil)
	_ Events  = (*localapi.Broker)(nil)
)

// Options make a Link.
type Options struct {
	Config config.Fleet
	// Identity is the box's id and TLS settings (LoadIdentity).
	Identity Identity
	Version  string
	// API is the local API's in-process handler with origin fleet
	// (localapi.Server.InProcess): commands run through the one route
	// table.
	API http.Handler
	// Routes is the API's route table (localapi.Routes when nil): the
	// configured routes must name its rows, and a command is matched
	// against it.
	Routes   []localapi.Route
	Journal  Journal
	Events   Events
	Snapshot func() journal.Snapshot
	// Cursor keeps the id of the last record the broker acknowledged.
	Cursor Cursor
	Logger *slog.Logger
	// Delay picks a group command's wait within its window; nil means
	// uniformly at random.
	Delay func(window time.Duration) time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Dialer, if set, dials the brokers (a source address, a test that
	// breaks the connection under the link).
	Dialer *net.Dialer
	// Changed, if set, is called when what Info says changed (connected
	// or not, to which broker), not for the acknowledged record; it must
	// be quick and not call the Link.
	Changed func()
}

// Identity is who the box is at the broker.
type Identity struct {
	ID  string
	TLS *tls.Config
	// CertNotAfter is the client certificate's expiry (zero without one).
	CertNotAfter time.Time
}

// Link is one box's connection to the fleet broker.
type Link struct {
	o      Options
	topics Topics
	keys   []ed25519.PublicKey
	routes *http.ServeMux  // the API's table (see allowed)
	allow  map[string]bool // its rows the config allows, by pattern
	client mqtt.Client
	log    *slog.Logger

	refusals bucket // refused commands journalled

	wakeRecords chan struct{}
	wakeStatus  chan struct{}
	stop        chan struct{} // closed when Run ends

	mu        sync.Mutex
	connected bool          // and subscribed to its commands
	lost      chan struct{} // closed when the current connection is lost
	broker    string
	trying    string          // the broker of the newest connection attempt
	acked     uint64          // the cursor
	ahead     map[uint64]bool // acknowledged beyond the cursor, from its file: followRecords' own
	inflight  map[string]bool
}

// New checks the options and makes a link; Run connects it.
func New(o Options) (*Link, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Delay == nil {
		o.Delay = func(w time.Duration) time.Duration {
			if w <= 0 {
				return 0
			}
			return rand.N(w)
		}
	}
	l := &Link{
		o: o, topics: Topics{Prefix: o.Config.TopicPrefix(), ID: o.Identity.ID},
		log:         o.Logger.With("component", "fleet"),
		wakeRecords: make(chan struct{}, 1), wakeStatus: make(chan struct{}, 1), stop: make(chan struct{}),
		inflight: map[string]bool{}, lost: make(chan struct{}),
	}
	for _, k := range o.Config.OperatorKeys {
		pub, err := config.ParseOperatorKey(k)
		if err != nil {
			return nil, err
		}
		l.keys = append(l.keys, pub)
	}
	var err error
	if l.routes, l.allow, err = allowedRoutes(o.Routes, o.Config.Routes); err != nil {
		return nil, err
	}
	acked, ahead, err := o.Cursor.LoadAhead()
	if err != nil {
		return nil, err
	}
	l.acked, l.ahead = acked, ahead
	return l, nil
}

// Info says how the link stands.
func (l *Link) Info() apitype.FleetLink {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := apitype.FleetLink{Connected: l.connected, Broker: l.broker, ID: l.o.Identity.ID, Acked: l.acked}
	if t := l.o.Identity.CertNotAfter; !t.IsZero() {
		in.CertNotAfter = &t
	}
	return in
}

func (l *Link) changed() {
	if l.o.Changed != nil {
		l.o.Changed()
	}
}

func (l *Link) presence(online bool) []byte {
	p := Presence{ID: l.o.Identity.ID, Online: online, Time: l.o.Now().UTC().Round(time.Millisecond), Version: l.o.Version, Groups: l.o.Config.Groups}
	if t := l.o.Identity.CertNotAfter; !t.IsZero() {
		p.CertNotAfter = &t
	}
	b, _ := json.Marshal(p)
	return b
}

// Run connects and serves until ctx ends, then says offline and
// disconnects. Connection losses are paho's to mend: it reconnects to
// the brokers in turn, and the link resumes from its cursor.
func (l *Link) Run(ctx context.Context) error {
	cfg := l.o.Config
	opts := mqtt.NewClientOptions().
		SetClientID(l.o.Identity.ID).
		SetProtocolVersion(4).  // 3.1.1; paho's fallback to 3.1 is refused by NATS
		SetCleanSession(false). // commands sent while the box was away wait for it
		SetKeepAlive(time.Duration(cfg.KeepaliveSeconds())*time.Second).
		SetConnectRetry(true). // AutoReconnect does not retry the first connect
		SetConnectRetryInterval(2*time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(30*time.Second).
		SetOrderMatters(false). // a long command must not hold up the others
		SetTLSConfig(l.o.Identity.TLS).
		SetBinaryWill(l.topics.State(), l.presence(false), 1, true).
		SetOnConnectHandler(l.onConnect).
		SetConnectionAttemptHandler(func(u *url.URL, tc *tls.Config) *tls.Config {
			l.mu.Lock()
			l.trying = u.String()
			l.mu.Unlock()
			return tc
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			l.mu.Lock()
			l.connected = false
			close(l.lost)
			l.lost = make(chan struct{})
			l.mu.Unlock()
			l.changed()
			l.log.Warn("broker connection lost", "err", err)
		})
	for _, b := range cfg.Brokers {
		opts.AddBroker(b)
	}
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if l.o.Dialer != nil {
		opts.SetDialer(l.o.Dialer)
	}
	l.client = mqtt.NewClient(opts)
	l.client.Connect() // retries in the background until ctx ends
	events, dropped, cancel := l.o.Events.Subscribe(0, false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.followRecords(ctx) }()
	go func() { defer wg.Done(); l.followStatus(ctx) }()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-dropped:
			// Fell behind the broker's buffer: subscribe again and look
			// at everything, as after a reconnect.
			cancel()
			events, dropped, cancel = l.o.Events.Subscribe(0, false)
			wake(l.wakeRecords)
			wake(l.wakeStatus)
		case ev := <-events:
			wake(l.wakeStatus)
			if ev.Type == "operation" && operationEnded(ev.Data) {
				wake(l.wakeRecords)
			}
		}
	}
	cancel()
	close(l.stop)
	wg.Wait()
	if l.client.IsConnectionOpen() {
		// A clean disconnect sends no will: say offline ourselves.
		t := l.client.Publish(l.topics.State(), 1, true, l.presence(false))
		t.WaitTimeout(2 * time.Second)
	}
	l.client.Disconnect(500)
	return nil
}

func operationEnded(data json.RawMessage) bool {
	var oe apitype.OperationEvent
	return json.Unmarshal(data, &oe) == nil && oe.State.Final()
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// onConnect runs on every (re)connect: subscribe, say online, and send
// what changed while away.
func (l *Link) onConnect(c mqtt.Client) {
	l.mu.Lock()
	l.broker = l.trying
	lost := l.lost
	l.mu.Unlock()
	subs := map[string]byte{l.topics.Cmd(): 1}
	for _, g := range l.o.Config.Groups {
		subs[GroupCmd(l.topics.Prefix, g)] = 1
	}
	// A broker may refuse or lose a subscription (a NATS node dying while
	// it creates the consumer): without one the box is deaf, so it asks
	// again until every topic is granted or the connection is gone.
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		t := c.SubscribeMultiple(subs, func(_ mqtt.Client, m mqtt.Message) { go l.command(m.Payload()) })
		err := waitToken(t, lost, l.stop)
		if err == nil {
			for topic, q := range t.(*mqtt.SubscribeToken).Result() {
				if q == 0x80 {
					err = fmt.Errorf("the broker refused the subscription to %s", topic)
				}
			}
		}
		if err == nil {
			break
		}
		l.log.Warn("cannot subscribe to commands", "err", err, "again_in", delay)
		select {
		case <-lost:
			return
		case <-l.stop:
			return
		case <-time.After(delay):
		}
	}
	l.mu.Lock()
	l.connected = true
	l.mu.Unlock()
	l.changed()
	c.Publish(l.topics.State(), 1, true, l.presence(true))
	l.log.Info("connected to the fleet broker", "id", l.o.Identity.ID)
	wake(l.wakeRecords)
	wake(l.wakeStatus)
}

// errLost is a wait ended by the connection's loss.
var errLost = errors.New("the broker connection was lost")

// waitToken waits for a paho token, the connection's loss or stop. paho
// resends a QoS 1 message of a persistent session after a reconnect under
// a new token, so the old one may never complete: the loss ends the wait.
func waitToken(t mqtt.Token, lost, stop <-chan struct{}) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-lost:
		return errLost
	case <-stop:
		return errors.New("the link stopped")
	case <-time.After(30 * time.Second):
		return errors.New("no answer from the broker in 30 s")
	}
}

// publish sends one message and waits for the broker's acknowledgement.
func (l *Link) publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	// The link's stop ends the wait: Run closes it when ctx ends.
	return waitToken(l.client.Publish(topic, 1, retained, payload), lost, l.stop)
}

// followStatus publishes the status, retained, whenever it differs from
// the last one published; uptime is left out of the comparison (it is
// the only field that changes without an event).
func (l *Link) followStatus(ctx context.Context) {
	var last []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wakeStatus:
		}
		if !l.client.IsConnectionOpen() {
			last = nil // published again on the next connect
			continue
		}
		var st apitype.Status
		if code, body := l.call(ctx, "GET", "/api/v1/status", nil, ""); code != http.StatusOK || json.Unmarshal(body, &st) != nil {
			continue
		}
		st.UptimeSeconds = 0
		b, _ := json.Marshal(st)
		if string(b) == string(last) {
			continue
		}
		if err := l.publish(ctx, l.topics.Status(), true, b); err != nil {
			l.log.Debug("cannot publish status", "err", err)
			continue
		}
		last = b
	}
}

// callRecorder is the answer of an in-process API call.
type callRecorder struct {
	h    http.Header
	code int
	body []byte
}

func (r *callRecorder) Header() http.Header { return r.h }
func (r *callRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *callRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}

// call runs one API call through the route table, as a command.
func (l *Link) call(ctx context.Context, method, path string, body []byte, ref string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, "http://boxagent"+path, bytesReader(body))
	if err != nil {
		return http.StatusBadRequest, errorBody("fleet.invalid", fmt.Sprintf("cannot make the request: %v", err))
	}
	req.Header.Set("Content-Type", "application/json")
	if ref != "" {
		req.Header.Set(apitype.RefHeader, ref)
	}
	rec := &callRecorder{h: http.Header{}}
	l.o.API.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec.code, rec.body
}

func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return b
}
