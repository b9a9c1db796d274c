package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// goodHash is a well-formed argon2id PHC string (salt "saltsalt", a
// 16-byte key); the daemon's tests check real verification.
const goodHash = "$argon2id$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *Config // nil when an error is expected
		errs []string
	}{
		{
			name: "empty file is the defaults",
			doc:  "",
			want: Default(),
		},
		{
			name: "every key",
			doc: `# the box in the hall
board = "virtual-board"

[http]
listen = "0.0.0.0:8080"   # LAN: a password is set
password_hash = "` + goodHash + `"

[journal]
keep = 50
`,
			want: &Config{Board: "virtual-board", HTTP: HTTP{Listen: "0.0.0.0:8080", PasswordHash: goodHash}, Journal: Journal{Keep: 50}},
		},
		{
			name: "absent keys keep defaults",
			doc:  "[journal]\nkeep = 10\n",
			want: &Config{Board: "auto", HTTP: HTTP{Listen: "127.0.0.1:8080"}, Journal: Journal{Keep: 10}},
		},
		{
			name: "dotted keys",
			doc:  "http.listen = \"[::1]:0\"\njournal.keep = 1000000\n",
			want: &Config{Board: "auto", HTTP: HTTP{Listen: "[::1]:0"}, Journal: Journal{Keep: 1000000}},
		},
		{
			name: "localhost and port 0",
			doc:  "[http]\nlisten = \"localhost:0\"\n",
			want: &Config{Board: "auto", HTTP: HTTP{Listen: "localhost:0"}, Journal: Journal{Keep: 1000}},
		},
		{
			name: "syntax error",
			doc:  "board = \"auto\"\n[http]\nlisten = \n",
			errs: []string{"config.toml:3: cannot parse TOML: unexpected character U+000A at start of value"},
		},
		{
			name: "unclosed table header",
			doc:  "[http\n",
			errs: []string{"config.toml:1: cannot parse TOML: expected ']' to close table name"},
		},
		{
			name: "unknown keys and table, each on its line",
			doc:  "board = \"auto\"\n[http]\nlisen = \"x\"\n[journal]\nkeep = 10\nkeeep = 3\n[bluetoth]\nadapter = \"hci0\"\n",
			errs: []string{
				"config.toml:3: http.lisen: unknown key",
				"config.toml:6: journal.keeep: unknown key",
				"config.toml:7: bluetoth: unknown table",
			},
		},
		{
			name: "wrong type",
			doc:  "[journal]\nkeep = \"many\"\n",
			errs: []string{"config.toml:2: journal.keep: want an integer, not a string"},
		},
		{
			name: "wrong type, table for a string",
			doc:  "[board]\nid = 1\n",
			errs: []string{"config.toml:1: board: cannot store a table in a string"},
		},
		{
			name: "defined twice",
			doc:  "board = \"auto\"\nboard = \"virtual-board\"\n",
			errs: []string{"config.toml:2: board: defined twice"},
		},
		{
			name: "keep out of range",
			doc:  "[journal]\nkeep = 5\n",
			errs: []string{"config.toml:2: journal.keep: 5 is out of range 10..1000000"},
		},
		{
			name: "keep too large",
			doc:  "[journal]\nkeep = 1000001\n",
			errs: []string{"config.toml:2: journal.keep: 1000001 is out of range 10..1000000"},
		},
		{
			name: "board not an id",
			doc:  "board = \"Raspberry Pi\"\n",
			errs: []string{`config.toml:1: board: "Raspberry Pi" is neither "auto" nor a profile id (lowercase letters, digits, '-' and '_')`},
		},
		{
			name: "listen not host:port",
			doc:  "board = \"auto\"\n\n[http]\n\n\n\nlisten = \"nope\"\n",
			errs: []string{`config.toml:7: http.listen: cannot parse "nope" as host:port`},
		},
		{
			name: "listen port out of range",
			doc:  "[http]\nlisten = \"127.0.0.1:65536\"\n",
			errs: []string{`config.toml:2: http.listen: cannot parse "127.0.0.1:65536" as host:port: port "65536" is not a number from 0 to 65535`},
		},
		{
			name: "listen named port",
			doc:  "[http]\nlisten = \"127.0.0.1:http\"\n",
			errs: []string{`config.toml:2: http.listen: cannot parse "127.0.0.1:http" as host:port: port "http" is not a number from 0 to 65535`},
		},
		{
			name: "listen host name",
			doc:  "[http]\nlisten = \"box.lan:8080\"\n",
			errs: []string{`config.toml:2: http.listen: cannot parse "box.lan:8080" as host:port: host "box.lan" is not an IP address or localhost`},
		},
		{
			name: "LAN without password",
			doc:  "[http]\nlisten = \"0.0.0.0:8080\"\n",
			errs: []string{`config.toml:2: http.listen: refuse to listen on "0.0.0.0:8080", reachable from the network, unless a password hash is configured (http.password_hash)`},
		},
		{
			name: "every address without password",
			doc:  "[http]\nlisten = \":8080\"\n",
			errs: []string{`config.toml:2: http.listen: refuse to listen on ":8080", reachable from the network, unless a password hash is configured (http.password_hash)`},
		},
		{
			name: "password hash not PHC",
			doc:  "[http]\npassword_hash = \"hunter2\"\n",
			errs: []string{"config.toml:2: http.password_hash: not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): want 5 fields, each after a '$'"},
		},
		{
			name: "password hash of another algorithm",
			doc:  "[http]\npassword_hash = \"$argon2i$v=19$m=65536,t=2,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n",
			errs: []string{`config.toml:2: http.password_hash: not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): algorithm "argon2i" is not argon2id`},
		},
		{
			name: "unknown keys and bad values are reported together",
			doc:  "[journal]\nkeep = 0\n[http]\nlisten = \"0.0.0.0:80\"\n[top]\n",
			errs: []string{
				"config.toml:2: journal.keep: 0 is out of range 10..1000000",
				"config.toml:4: http.listen: refuse to listen on \"0.0.0.0:80\", reachable from the network, unless a password hash is configured (http.password_hash)",
				"config.toml:5: top: unknown table",
			},
		},
		{
			name: "several validation problems, sorted by line",
			doc:  "[journal]\nkeep = 0\n[http]\nlisten = \"0.0.0.0:80\"\npassword_hash = \"$argon2id$v=19$m=65536,t=0,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n",
			errs: []string{
				"config.toml:2: journal.keep: 0 is out of range 10..1000000",
				"config.toml:5: http.password_hash: not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): t=0 is out of range 1..8",
			},
		},
		{
			name: "a problem at a dotted key",
			doc:  "board = \"auto\"\nhttp.listen = \"nope\"\n",
			errs: []string{`config.toml:2: http.listen: cannot parse "nope" as host:port`},
		},
		{
			name: "network pppd runner",
			doc:  "[network]\npppd = \"daemon\"\n",
			errs: []string{`config.toml:2: network.pppd: "daemon" is not one of "auto", "systemd", "child"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("config.toml", []byte(tt.doc))
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Parse = %+v, want %+v", *got, *tt.want)
				}
				return
			}
			if got != nil {
				t.Errorf("Parse returned a config with an error: %+v", got)
			}
			checkErrs(t, err, tt.errs)
		})
	}
}

// checkErrs checks the texts of err: one *Error, or Errors for several.
func checkErrs(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var texts []string
	switch e := err.(type) {
	case *Error:
		texts = []string{e.Error()}
		if len(want) != 1 {
			t.Errorf("got one *Error, want Errors of %d", len(want))
		}
	case Errors:
		if len(e) < 2 {
			t.Errorf("Errors of %d, want a lone *Error", len(e))
		}
		for _, one := range e {
			texts = append(texts, one.Error())
		}
		if err.Error() != strings.Join(texts, "\n") {
			t.Errorf("Errors.Error() = %q, want one per line", err.Error())
		}
	default:
		t.Fatalf("error is %T (%v), want *Error or Errors", err, err)
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range collect(err) {
		if e.Line == 0 || e.File != "config.toml" {
			t.Errorf("%q has no line or file: %+v", e.Error(), e)
		}
	}
}

func collect(err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return Errors{e}
	}
	return nil
}

func TestErrorsUnwrap(t *testing.T) {
	_, err := Parse("c.toml", []byte("[journal]\nkeep = \"x\"\n"))
	if _, ok := errors.AsType[*toml.DecodeError](err); !ok {
		t.Errorf("a decode problem should wrap *toml.DecodeError: %v", err)
	}
	_, err = Parse("c.toml", []byte("[journal]\nkeep = 1\n[http]\nlisten = \"x\"\n"))
	var one *Error
	if !errors.As(err, &one) || one.Key != "journal.keep" || one.Line != 2 || one.Column != 1 {
		t.Errorf("errors.As(Errors, *Error) = %+v", one)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("a rule's problem should wrap its FieldError: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "config.toml", Line: 7, Key: "http.listen", Msg: `cannot parse "nope" as host:port`}, `config.toml:7: http.listen: cannot parse "nope" as host:port`},
		{Error{File: "config.toml", Line: 3, Msg: "cannot parse TOML: x"}, "config.toml:3: cannot parse TOML: x"},
		{Error{File: "/etc/boxagent/config.toml", Key: "board", Msg: "m"}, "/etc/boxagent/config.toml: board: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping fs.ErrNotExist", err)
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte("[journal]\nkeep = 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.Journal.Keep != 20 {
		t.Errorf("Load = %+v, %v", c, err)
	}
	if err := os.WriteFile(path, []byte("[journal]\nkeep = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + ":2: journal.keep: 2 is out of range 10..1000000"; err == nil || err.Error() != want {
		t.Errorf("Load(invalid) = %v, want %q", err, want)
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := validateDoc("default", nil, Default()).err(); err != nil {
		t.Errorf("Default() is invalid: %v", err)
	}
	if rev := Default().Revision(); !strings.HasPrefix(rev, "sha256:") || len(rev) != len("sha256:")+64 {
		t.Errorf("Default().Revision() = %q", rev)
	}
}

func TestListenIsLoopback(t *testing.T) {
	tests := []struct {
		listen  string
		want    bool
		wantErr bool
	}{
		{"127.0.0.1:8080", true, false},
		{"127.0.0.53:0", true, false},
		{"[::1]:8080", true, false},
		{"localhost:8080", true, false},
		{"0.0.0.0:8080", false, false},
		{"[::]:8080", false, false},
		{":8080", false, false},
		{"192.168.1.10:80", false, false},
		{"nope", false, true},
		{"127.0.0.1", false, true},
		{"127.0.0.1:-1", false, true},
		{"", false, true},
	}
	for _, tt := range tests {
		c := Default()
		c.HTTP.Listen = tt.listen
		got, err := c.ListenIsLoopback()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ListenIsLoopback(%q) = %v, %v; want %v, error %v", tt.listen, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRevision(t *testing.T) {
	parse := func(doc string) *Config {
		t.Helper()
		c, err := Parse("config.toml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse("board = \"auto\"\n[journal]\nkeep = 20\n")
	b := parse("# same, laid out differently\n\n  journal.keep=20   # twenty\n")
	if a.Revision() != b.Revision() {
		t.Errorf("layout and comments changed the revision: %s != %s", a.Revision(), b.Revision())
	}
	if a.Revision() == Default().Revision() {
		t.Errorf("a changed value kept the revision")
	}
	c := parse("[http]\npassword_hash = \"" + goodHash + "\"\n")
	d := parse("[http]\npassword_hash = \"" + strings.Replace(goodHash, "t=2", "t=3", 1) + "\"\n")
	if c.Revision() == d.Revision() || c.Revision() == Default().Revision() {
		t.Errorf("a changed secret kept the revision")
	}
}

func TestSnapshot(t *testing.T) {
	c := Default()
	c.HTTP.PasswordHash = goodHash
	var got struct{ HTTP map[string]any }
	if err := json.Unmarshal(c.Snapshot(), &got); err != nil {
		t.Fatal(err)
	}
	if h := got.HTTP["password_hash"]; h != Fingerprint(goodHash) || !strings.HasPrefix(Fingerprint(goodHash), "hmac-sha256:") || len(Fingerprint(goodHash)) != len("hmac-sha256:")+16 {
		t.Errorf("password_hash in snapshot = %v, want fingerprint %s", h, Fingerprint(goodHash))
	}
	if strings.Contains(string(c.Snapshot()), goodHash) {
		t.Errorf("snapshot holds the secret: %s", c.Snapshot())
	}
	if c.HTTP.PasswordHash != goodHash {
		t.Errorf("Snapshot changed the config")
	}
	want := `{"board":"auto","http":{"listen":"127.0.0.1:8080","password_hash":""},"journal":{"keep":1000}}`
	if got := string(Default().Snapshot()); got != want {
		t.Errorf("Default().Snapshot() = %s, want %s", got, want)
	}
}

// TestSnapshotDot1X: an uplink's 802.1X password is fingerprinted, its
// identity and files are not secrets.
func TestSnapshotDot1X(t *testing.T) {
	c, err := Parse("config.toml", []byte(`[[network.uplink]]
parent = "eth0"
vlan = 45
ipv4 = { method = "dhcp" }
dot1x = { eap = "md5", identity = "box-1", password = "dot1x-s3cret" }
`))
	if err != nil {
		t.Fatal(err)
	}
	snap := string(c.Snapshot())
	if strings.Contains(snap, "dot1x-s3cret") || !strings.Contains(snap, `"password":"`+Fingerprint("dot1x-s3cret")+`"`) || !strings.Contains(snap, `"identity":"box-1"`) {
		t.Errorf("snapshot %s", snap)
	}
}

// TestSecretsAreStrings guards the rule that redact only hides strings: a
// secret field of another kind would leak into snapshots.
func TestSecretsAreStrings(t *testing.T) {
	var visit func(typ reflect.Type, path string)
	visit = func(typ reflect.Type, path string) {
		typ = elem(typ)
		if typ.Kind() != reflect.Struct {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Tag.Get("secret") == "true" && !onlyStrings(f.Type) {
				t.Errorf("secret field %s.%s holds more than strings", path, f.Name)
			}
			visit(f.Type, path+"."+f.Name)
		}
	}
	visit(reflect.TypeFor[Config](), "Config")
	visit(reflect.TypeFor[testDoc](), "testDoc")
}

func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t
}

func onlyStrings(t reflect.Type) bool {
	t = elem(t)
	switch t.Kind() {
	case reflect.String:
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && !onlyStrings(f.Type) {
				return false
			}
		}
		return true
	}
	return false
}
