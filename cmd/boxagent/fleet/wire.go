// Package fleet is the box as a device on an MQTT broker (MQTT 3.1.1,
// paho): its presence and status retained, every journal record delivered
// at least once from a cursor kept in the state folder, and commands
// signed by an operator run through the local API's own route table
// (origin fleet). The operator's side is the CLI with Transport as its
// client's transport. There is no fleet server of ours: any broker with
// per-device ACLs (Mosquitto, a NATS cluster, EMQX …) is the fleet.
//
// Topics, under a prefix (default "boxagent"):
//
//	<p>/<id>/state        retained: online/offline (the last will)
//	<p>/<id>/status       retained: GET /api/v1/status, on change only
//	<p>/<id>/ops          QoS 1: every journal record once it has ended
//	<p>/<id>/cmd          QoS 1, to the box: a signed command
//	<p>/<id>/reply        QoS 1, from the box: a command's answer
//	<p>/_group/<g>/cmd    QoS 1, to every box of group g
//
// A box may write only below <p>/<id>/ and read its group topics: the
// broker's ACL says so, and the box checks each command's signature, so
// neither a box nor the broker can make another box act.
//
// An idle link's wakeups are paho's, and more than the keepalive's: paho
// (v1.5.1, ping.go) checks whether a ping is due on a ticker of 5 s for
// any keepalive above 10 s (keepalive/4 at or below it), by design
// (eclipse-paho/paho.mqtt.golang#373). Each tick wakes the idle agent's
// netpoller thread, a thread to run the goroutine and sysmon (whose deep
// sleep ends at the next timer): ~4 wakeups, ~48 a minute whatever the
// keepalive, beside one ping and its answer per keepalive (measured in
// docs/BENCHMARKS.md, "What a box pays"). The keepalive sets how often a
// ping goes and how soon the broker publishes the will (after 1.5 ×
// keepalive of silence), not the ticks. Fewer would take a timer armed at
// the last packet sent plus the keepalive: paho's ticker changed upstream,
// or a pinger of ours, which paho allows only with its keepalive at 0 --
// and that also writes 0 into CONNECT, so the broker would never time a
// silent box out and its will would go only on a TCP error; ours would
// then have to rewrite the keepalive of the CONNECT paho writes, in a
// net.Conn of SetCustomOpenConnectionFn, and slip PINGREQs between paho's
// packets: the protocol rewritten in the byte stream, not taken on.
package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// GroupLevel is the topic level of group commands; ids cannot begin with
// '_', so no box is called that.
const GroupLevel = "_group"

// Topics are one box's topics.
type Topics struct{ Prefix, ID string }

// State is the retained presence topic.
func (t Topics) State() string { return t.Prefix + "/" + t.ID + "/state" }

// Status is the retained status topic.
func (t Topics) Status() string { return t.Prefix + "/" + t.ID + "/status" }

// Ops is the topic of the journal records.
func (t Topics) Ops() string { return t.Prefix + "/" + t.ID + "/ops" }

// Cmd is the topic of commands to this box.
func (t Topics) Cmd() string { return t.Prefix + "/" + t.ID + "/cmd" }

// Reply is the topic of this box's answers.
func (t Topics) Reply() string { return t.Prefix + "/" + t.ID + "/reply" }

// GroupCmd is the topic of a group's commands.
func GroupCmd(prefix, group string) string { return prefix + "/" + GroupLevel + "/" + group + "/cmd" }

// Presence is the retained state message; the last will is the same with
// Online false.
type Presence struct {
	ID      string    `json:"id"`
	Online  bool      `json:"online"`
	Time    time.Time `json:"time"`
	Version string    `json:"version,omitempty"`
	Groups  []string  `json:"groups,omitempty"`
	// CertNotAfter is when the box's client certificate expires.
	CertNotAfter *time.Time `json:"cert_not_after,omitempty"`
}

// Command is what an operator asks of one box or a group: one API call.
type Command struct {
	// ID names the command; a box runs a command once per ID.
	ID string `json:"id"`
	// Target is "<box id>" or "_group/<group>": a signed command for one
	// box cannot be replayed to another.
	Target string `json:"target"`
	Method string `json:"method"`
	// Path is the API path with its query, e.g. /api/v1/operations?limit=5.
	Path string          `json:"path"`
	Body json.RawMessage `json:"body,omitempty"`
	// Expires: a box refuses the command after this time.
	Expires time.Time `json:"expires"`
	// WindowMS is a group command's window: each box waits a random delay
	// within it, so thousands do not fetch a package at once.
	WindowMS int64 `json:"window_ms,omitempty"`
}

// Envelope carries a command and its signature: Sig is ed25519 over the
// exact bytes of Command, as sent.
type Envelope struct {
	Command json.RawMessage `json:"command"`
	// Key is the signer's public key (base64), so a box with several
	// operator keys knows which to check.
	Key string `json:"key"`
	Sig string `json:"sig"`
}

// Reply is a box's answer to a command: the API's status and body (the
// operation record, or the error with its code).
type Reply struct {
	ID     string          `json:"id"`
	Device string          `json:"device"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
	// Again says the command had already run (or been refused): this is
	// its journalled answer, not a second run.
	Again bool `json:"again,omitempty"`
}

// Sign encodes c and signs it with the operator's key.
func Sign(c Command, key ed25519.PrivateKey) ([]byte, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the command: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return json.Marshal(Envelope{
		Command: raw,
		Key:     base64.StdEncoding.EncodeToString(pub),
		Sig:     base64.StdEncoding.EncodeToString(ed25519.Sign(key, raw)),
	})
}

// Errors of Open, for the refusal's code.
var (
	ErrMalformed    = errors.New("malformed command")
	ErrBadSignature = errors.New("bad signature")
)

// Open checks an envelope against the operator keys and returns its
// command. The command is decoded only once its signature holds.
func Open(msg []byte, keys []ed25519.PublicKey) (Command, error) {
	var env Envelope
	if err := json.Unmarshal(msg, &env); err != nil || len(env.Command) == 0 {
		return Command{}, fmt.Errorf("%w: not an envelope", ErrMalformed)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Sig)
	if err != nil {
		return Command{}, fmt.Errorf("%w: the signature is not base64", ErrBadSignature)
	}
	ok := false
	for _, k := range keys {
		if base64.StdEncoding.EncodeToString(k) == env.Key && ed25519.Verify(k, env.Command, sig) {
			ok = true
			break
		}
	}
	if !ok {
		return Command{}, fmt.Errorf("%w: no operator key of this box signed it", ErrBadSignature)
	}
	var c Command
	if err := json.Unmarshal(env.Command, &c); err != nil || c.ID == "" {
		return Command{}, fmt.Errorf("%w: signed, but not a command", ErrMalformed)
	}
	return c, nil
}
