package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
)

// Fleet is the [fleet] table: the box as a device on an MQTT broker (see
// package fleet). The link is off unless the table is present.
type Fleet struct {
	// Brokers are tried in order and again on every reconnect:
	// mqtts://host:8883 (TLS), or mqtt://host:1883 to a loopback host
	// only (a broker on the box itself, the tests).
	Brokers []string `toml:"brokers" json:"brokers"`
	// CA is the PEM file of the broker's certificate authority; empty
	// means the system's roots.
	CA string `toml:"ca,omitempty" json:"ca,omitempty"`
	// Cert and Key are the box's client certificate and key (PEM): its
	// identity at the broker.
	Cert string `toml:"cert,omitempty" json:"cert,omitempty"`
	Key  string `toml:"key,omitempty" json:"key,omitempty"`
	// ID names the box in topics; empty means the certificate's CN, which
	// is what a broker with use_identity_as_username checks it against.
	ID string `toml:"id,omitempty" json:"id,omitempty"`
	// Username and Password are for brokers that want them besides (or
	// instead of) a client certificate.
	Username string `toml:"username,omitempty" json:"username,omitempty"`
	Password string `toml:"password,omitempty" json:"password,omitempty" secret:"true"`
	// Prefix is the first level of every topic.
	Prefix string `toml:"prefix,omitempty" json:"prefix,omitempty"`
	// Groups the box answers group commands of (a rollout's ring).
	Groups []string `toml:"groups,omitempty" json:"groups,omitempty"`
	// Routes are the API calls a signed command may make, as
	// "METHOD /api/v1/path" with the route table's {placeholders}.
	Routes []string `toml:"routes" json:"routes"`
	// OperatorKeys are the ed25519 public keys (base64 of 32 bytes) that
	// may sign commands: the broker alone cannot make the box act.
	OperatorKeys []string `toml:"operator_keys" json:"operator_keys"`
	// Keepalive is the MQTT keepalive in seconds: how often an idle link
	// pings, and how soon the broker publishes the box's will (1.5 ×
	// keepalive of silence). Not how often paho looks whether a ping is
	// due: every 5 s above 10 s (see package fleet).
	Keepalive int `toml:"keepalive,omitempty" json:"keepalive,omitempty"`
}

// Defaults of [fleet].
const (
	DefaultFleetPrefix    = "boxagent"
	DefaultFleetKeepalive = 60
	MinFleetKeepalive     = 5
	MaxFleetKeepalive     = 3600
)

// ValidFleetName reports whether s can be a fleet id, a group or a topic
// level: 1 to 64 ASCII letters, digits, '_', '.' and '-', the first a
// letter or a digit. So it holds no MQTT wildcard or separator and is
// short enough for a topic. The fleet link checks a certificate's CN
// with it.
func ValidFleetName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')) {
			return false
		}
	}
	return len(s) >= 1 && len(s) <= 64
}

// validFleetRoute reports whether s is "METHOD /api/v1/path": GET, POST
// or DELETE, one space, and a path below /api/v1/ of at least one ASCII
// letter, digit or any of "_./{}-".
func validFleetRoute(s string) bool {
	method, path, _ := strings.Cut(s, " ")
	path, api := strings.CutPrefix(path, "/api/v1/")
	return (method == "GET" || method == "POST" || method == "DELETE") && api && path != "" &&
		!strings.ContainsFunc(path, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./{}-", r))
		})
}

// Validate checks [fleet] whole.
func (f Fleet) Validate() error {
	var errs []error
	if len(f.Brokers) == 0 {
		errs = append(errs, FieldErrorf("brokers", "at least one broker URL is needed (mqtts://host:8883)"))
	}
	for i, b := range f.Brokers {
		if err := checkBrokerURL(b); err != nil {
			errs = append(errs, &FieldError{Key: fmt.Sprintf("brokers[%d]", i), Msg: err.Error()})
		}
	}
	for _, p := range []struct{ key, v string }{{"ca", f.CA}, {"cert", f.Cert}, {"key", f.Key}} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			errs = append(errs, FieldErrorf(p.key, "%q is not an absolute path", p.v))
		}
	}
	if (f.Cert == "") != (f.Key == "") {
		errs = append(errs, FieldErrorf("cert", "cert and key go together"))
	}
	if f.ID == "" && f.Cert == "" {
		errs = append(errs, FieldErrorf("id", "without a client certificate the box needs an id"))
	}
	if f.ID != "" && !ValidFleetName(f.ID) {
		errs = append(errs, FieldErrorf("id", "%q is not an id (letters, digits, '.', '_', '-'; 64 at most)", f.ID))
	}
	if f.Password != "" && f.Username == "" {
		errs = append(errs, FieldErrorf("password", "a password needs a username"))
	}
	if f.Prefix != "" {
		for _, level := range strings.Split(f.Prefix, "/") {
			if !ValidFleetName(level) {
				errs = append(errs, FieldErrorf("prefix", "%q is not a topic prefix (levels of letters, digits, '.', '_', '-' joined by '/')", f.Prefix))
				break
			}
		}
	}
	for i, g := range f.Groups {
		if !ValidFleetName(g) {
			errs = append(errs, FieldErrorf(fmt.Sprintf("groups[%d]", i), "%q is not a group name (letters, digits, '.', '_', '-')", g))
		}
	}
	for i, r := range f.Routes {
		if !validFleetRoute(r) {
			errs = append(errs, FieldErrorf(fmt.Sprintf("routes[%d]", i), "%q is not \"METHOD /api/v1/path\" (GET, POST or DELETE)", r))
		} else if r == "GET /api/v1/events" {
			errs = append(errs, FieldErrorf(fmt.Sprintf("routes[%d]", i), "the event stream is not a command: the link publishes operations itself"))
		}
	}
	if len(f.OperatorKeys) == 0 {
		errs = append(errs, FieldErrorf("operator_keys", "at least one operator key is needed to sign commands (boxagent fleet keygen)"))
	}
	for i, k := range f.OperatorKeys {
		if _, err := ParseOperatorKey(k); err != nil {
			errs = append(errs, &FieldError{Key: fmt.Sprintf("operator_keys[%d]", i), Msg: err.Error()})
		}
	}
	if f.Keepalive != 0 && (f.Keepalive < MinFleetKeepalive || f.Keepalive > MaxFleetKeepalive) {
		errs = append(errs, FieldErrorf("keepalive", "%d is out of range %d..%d (seconds)", f.Keepalive, MinFleetKeepalive, MaxFleetKeepalive))
	}
	return errors.Join(errs...)
}

// TopicPrefix is Prefix or its default.
func (f Fleet) TopicPrefix() string {
	if f.Prefix == "" {
		return DefaultFleetPrefix
	}
	return f.Prefix
}

// KeepaliveSeconds is Keepalive or its default.
func (f Fleet) KeepaliveSeconds() int {
	if f.Keepalive == 0 {
		return DefaultFleetKeepalive
	}
	return f.Keepalive
}

// ParseOperatorKey decodes an operator key: base64 of an ed25519 public
// key, with or without an "ed25519:" prefix.
func ParseOperatorKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "ed25519:"))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not an ed25519 public key (base64 of %d bytes)", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// checkBrokerURL allows TLS anywhere and plain MQTT to loopback only: the
// commands are signed, but the records and status are the box's own.
func checkBrokerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		return fmt.Errorf("%q is not scheme://host:port", s)
	}
	switch u.Scheme {
	case "mqtts", "ssl", "tls":
		return nil
	case "mqtt", "tcp":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q is plain MQTT beyond loopback: use mqtts://", s)
	}
	return fmt.Errorf("%q: scheme %q is not mqtts or mqtt", s, u.Scheme)
}
