package network

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

func TestDot1XValidate(t *testing.T) {
	up := func(method string, d Dot1X) Config {
		u := Uplink{Parent: "eth0", VLAN: ptr(45), IPv4: IPv4{Method: method}, Dot1X: &d}
		if method == MethodPPPoE {
			u.IPv4.User = "u"
		}
		return Config{Uplinks: []Uplink{u}}
	}
	const k = "uplink[0].dot1x."
	tests := []struct {
		name string
		cfg  Config
		want []FieldError
	}{
		{"md5", up(MethodDHCP, Dot1X{EAP: EAPMD5, Identity: "box", Password: "pw"}), nil},
		{"peap", up(MethodDHCP, Dot1X{EAP: EAPPEAP, Identity: "box", PasswordFile: "/etc/boxagent/dot1x.pw", CACert: "/etc/ssl/isp.pem",
			ClientCert: "/etc/boxagent/box.pem", ClientKey: "/etc/boxagent/box.key", Phase2: "mschapv2", AnonymousIdentity: "anon"}), nil},
		{"empty", up(MethodDHCP, Dot1X{}), []FieldError{
			{k + "eap", `missing: want "md5" or "peap"`},
			{k + "identity", "missing: the user name the authenticator knows the box by"},
			{k + "password", "missing: set password or password_file"},
		}},
		{"not dhcp", up(MethodPPPoE, Dot1X{EAP: "tls", Identity: "a\nb", Password: "pw", PasswordFile: "pw.txt"}), []FieldError{
			{"uplink[0].dot1x", `only for ipv4.method "dhcp": the DHCP client waits for the port to be authorized`},
			{k + "eap", `"tls" is not one of "md5", "peap"`},
			{k + "identity", "holds a NUL or a line break"},
			{k + "password_file", "set password or password_file, not both"},
			{k + "password_file", `"pw.txt" is not an absolute path`},
		}},
		{"md5 with tls keys", up(MethodDHCP, Dot1X{EAP: EAPMD5, Identity: "box", Password: "pw", CACert: "/ca.pem", ClientCert: "/c.pem", Phase2: "gtc"}), []FieldError{
			{k + "ca_cert", `only for eap "peap"`},
			{k + "client_cert", `only for eap "peap"`},
			{k + "phase2", `only for eap "peap"`},
			{k + "client_key", "client_cert and client_key go together"},
		}},
		{"peap phase2", up(MethodDHCP, Dot1X{EAP: EAPPEAP, Identity: "box", Password: "pw", Phase2: "gtc"}), []FieldError{
			{k + "phase2", `"gtc" is not "mschapv2"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Problems(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDot1XTOML(t *testing.T) {
	const doc = `
[[uplink]]
parent = "eth0"
vlan = 45
ipv4 = { method = "dhcp", default_route = false }
[uplink.dot1x]
eap = "peap"
identity = "box-1234"
password_file = "/etc/boxagent/dot1x.pw"
ca_cert = "/etc/boxagent/isp-ca.pem"
`
	var c Config
	if err := toml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	want := Dot1X{EAP: EAPPEAP, Identity: "box-1234", PasswordFile: "/etc/boxagent/dot1x.pw", CACert: "/etc/boxagent/isp-ca.pem"}
	if d := c.Uplinks[0].Dot1X; d == nil || *d != want {
		t.Fatalf("dot1x %+v", d)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestDot1XPasswordFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	must(t, os.WriteFile(f, []byte("s3cret\r\nignored\n"), 0o600))
	if pw, err := (Dot1X{PasswordFile: f}).password(); err != nil || pw != "s3cret" {
		t.Errorf("password %q, %v", pw, err)
	}
	must(t, os.WriteFile(f, []byte("\n"), 0o600))
	if _, err := (Dot1X{PasswordFile: f}).password(); err == nil {
		t.Error("an empty first line was taken")
	}
	if _, err := (Dot1X{PasswordFile: filepath.Join(dir, "none")}).password(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestDot1XReadme: the README's 802.1X example is a valid [network] table.
func TestDot1XReadme(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	must(t, err)
	m := regexp.MustCompile("(?s)\\*\\*802\\.1X on the uplink\\.\\*\\*.*?```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no toml block in its 802.1X section")
	}
	var doc struct{ Network Config }
	if err := toml.Unmarshal(m[1], &doc); err != nil {
		t.Fatal(err)
	}
	if err := doc.Network.Validate(); err != nil || len(doc.Network.Uplinks) != 1 || doc.Network.Uplinks[0].Dot1X == nil {
		t.Errorf("README's example: %v, %+v", err, doc.Network)
	}
}
