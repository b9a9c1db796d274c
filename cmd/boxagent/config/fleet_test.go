package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

// opKey is a valid operator key for the tests.
var opKey = func() string {
	pub, _, _ := ed25519.GenerateKey(nil)
	return base64.StdEncoding.EncodeToString(pub)
}()

func TestFleetSection(t *testing.T) {
	base := "[fleet]\nbrokers = [\"mqtts://broker.lan:8883\", \"mqtt://127.0.0.1:1883\"]\ncert = \"/etc/boxagent/fleet/box.pem\"\nkey = \"/etc/boxagent/fleet/box.key\"\noperator_keys = [\"" + opKey + "\"]\nroutes = [\"GET /api/v1/status\", \"POST /api/v1/fw/add\"]\n"
	tests := []struct {
		name string
		doc  string
		errs []string // substrings, one per problem; none: valid
	}{
		{name: "absent is off", doc: ""},
		{name: "cert and key, CN as id", doc: base},
		{name: "id, user and password, groups, prefix, keepalive", doc: "[fleet]\nbrokers = [\"mqtt://localhost:1883\"]\nid = \"box-1\"\nusername = \"u\"\npassword = \"p\"\nprefix = \"isp/stb\"\ngroups = [\"ring0\"]\nkeepalive = 30\nroutes = []\noperator_keys = [\"ed25519:" + opKey + "\"]\n"},
		{name: "no broker, no key, no id", doc: "[fleet]\nbrokers = []\nroutes = []\noperator_keys = []\n",
			errs: []string{"fleet.brokers: at least one", "fleet.id: without a client certificate", "fleet.operator_keys: at least one"}},
		{name: "plain MQTT beyond loopback", doc: strings.Replace(base, "mqtt://127.0.0.1:1883", "mqtt://10.0.0.1:1883", 1),
			errs: []string{"fleet.brokers[1]: \"mqtt://10.0.0.1:1883\" is plain MQTT beyond loopback"}},
		{name: "bad scheme, no port", doc: strings.Replace(base, `"mqtts://broker.lan:8883", "mqtt://127.0.0.1:1883"`, `"ws://b:1", "mqtts://b"`, 1),
			errs: []string{"fleet.brokers[0]: \"ws://b:1\": scheme", "fleet.brokers[1]: \"mqtts://b\" is not scheme://host:port"}},
		{name: "cert without key, relative", doc: strings.Replace(base, "key = \"/etc/boxagent/fleet/box.key\"\n", "ca = \"ca.pem\"\n", 1),
			errs: []string{"fleet.ca: \"ca.pem\" is not an absolute path", "fleet.cert: cert and key go together"}},
		{name: "wildcards in id, prefix, group", doc: base + "id = \"a/+\"\nprefix = \"x/#\"\ngroups = [\"ok\", \"g#\"]\n",
			errs: []string{"fleet.groups[1]", "fleet.id: \"a/+\" is not an id", "fleet.prefix"}},
		{name: "bad routes", doc: strings.Replace(base, `"GET /api/v1/status", "POST /api/v1/fw/add"`, `"PUT /api/v1/x", "GET /api/v1/events", "POST /etc/passwd"`, 1),
			errs: []string{"fleet.routes[0]", "fleet.routes[1]: the event stream", "fleet.routes[2]"}},
		{name: "bad key, keepalive, password alone", doc: strings.Replace(base, opKey, "c2hvcnQ=", 1) + "keepalive = 1\npassword = \"x\"\n",
			errs: []string{"fleet.keepalive: 1 is out of range", "fleet.operator_keys[0]", "fleet.password: a password needs a username"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.toml", []byte(tt.doc))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tt.doc == "" && c.Fleet != nil {
					t.Errorf("fleet is on by default")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it")
			}
			msg := err.Error()
			for _, want := range tt.errs {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			if n := strings.Count(msg, "config.toml:"); n != len(tt.errs) {
				t.Errorf("%d problems reported, want %d:\n%s", n, len(tt.errs), msg)
			}
		})
	}
}

func TestFleetSnapshotHidesPassword(t *testing.T) {
	c, err := Parse("config.toml", []byte("[fleet]\nbrokers = [\"mqtt://localhost:1883\"]\nid = \"b\"\nusername = \"u\"\npassword = \"hunter22\"\nroutes = []\noperator_keys = [\""+opKey+"\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(c.Snapshot())
	if strings.Contains(s, "hunter22") || !strings.Contains(s, Fingerprint("hunter22")) {
		t.Errorf("snapshot: %s", s)
	}
	if c.Fleet.TopicPrefix() != "boxagent" || c.Fleet.KeepaliveSeconds() != 60 {
		t.Errorf("defaults: %q %d", c.Fleet.TopicPrefix(), c.Fleet.KeepaliveSeconds())
	}
}
