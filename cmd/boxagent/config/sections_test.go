package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// testDoc has the shape later sections will have: a domain's table with
// an array of tables, itself holding an array of tables and a secret. It
// stands for network.Config until that package exists.
type testDoc struct {
	Board   string      `toml:"board"`
	Network testNetwork `toml:"network"`
}

type testNetwork struct {
	Uplink []testUplink `toml:"uplink"`
}

type testUplink struct {
	Name  string      `toml:"name"`
	VLAN  int         `toml:"vlan"`
	Route []testRoute `toml:"route"`
	PSK   string      `toml:"psk" secret:"true"`
}

type testRoute struct {
	To string `toml:"to"`
}

// uplinkError is what a domain package, which cannot import config,
// returns: its own type with a ConfigKey method.
type uplinkError struct{ key, msg string }

func (e uplinkError) Error() string     { return e.msg }
func (e uplinkError) ConfigKey() string { return e.key }

func (u testUplink) Validate() error {
	var errs []error
	if u.Name == "" {
		errs = append(errs, uplinkError{"name", "missing"})
	}
	if u.VLAN < 0 || u.VLAN > 4094 {
		errs = append(errs, uplinkError{"vlan", fmt.Sprintf("%d is out of range 0..4094", u.VLAN)})
	}
	return errors.Join(errs...)
}

func (r testRoute) Validate() error {
	if r.To == "" {
		return FieldErrorf("to", "missing")
	}
	return nil
}

// Validate checks a rule across elements; its errors carry full keys.
func (n testNetwork) Validate() error {
	seen := map[string]bool{}
	for i, u := range n.Uplink {
		if u.Name != "" && seen[u.Name] {
			return FieldErrorf(fmt.Sprintf("uplink[%d].name", i), "%q is used twice", u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

func TestArrayTableKeys(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		errs []string
	}{
		{
			name: "valid",
			doc:  "[[network.uplink]]\nname = \"iptv\"\nvlan = 45\n[[network.uplink.route]]\nto = \"10.0.0.0/8\"\n[[network.uplink]]\nname = \"wan\"\n",
		},
		{
			name: "rule in the second element",
			doc: `board = "x"

[[network.uplink]]
name = "iptv"
vlan = 45

[[network.uplink]]
name = "voip"
vlan = 5000
`,
			errs: []string{"config.toml:9: network.uplink[1].vlan: 5000 is out of range 0..4094"},
		},
		{
			name: "absent key reported at its table's header",
			doc:  "[[network.uplink]]\nname = \"iptv\"\n[[network.uplink]]\nvlan = 7\n",
			errs: []string{"config.toml:3: network.uplink[1].name: missing"},
		},
		{
			name: "nested array of tables",
			doc: `[[network.uplink]]
name = "a"
[[network.uplink.route]]
to = "x"
[[network.uplink]]
name = "b"
[[network.uplink.route]]
to = "y"
[[network.uplink.route]]
via = "z"
`,
			errs: []string{
				"config.toml:9: network.uplink[1].route[1].to: missing",
				"config.toml:10: network.uplink[1].route[1].via: unknown key",
			},
		},
		{
			name: "nested rule",
			doc:  "[[network.uplink]]\nname = \"a\"\n[[network.uplink]]\nname = \"b\"\n[[network.uplink.route]]\nto = \"\"\n",
			errs: []string{"config.toml:6: network.uplink[1].route[0].to: missing"},
		},
		{
			name: "wrong type in an element",
			doc:  "[[network.uplink]]\nname = \"a\"\n[[network.uplink]]\nname = \"b\"\nvlan = \"45\"\n",
			errs: []string{"config.toml:5: network.uplink[1].vlan: want an integer, not a string"},
		},
		{
			name: "inline array of tables",
			doc:  "[network]\nuplink = [\n  {name = \"a\"},\n  {name = \"b\", vlan = -1},\n]\n",
			errs: []string{"config.toml:4: network.uplink[1].vlan: -1 is out of range 0..4094"},
		},
		{
			name: "wrong type inside an inline table",
			doc:  "[network]\nuplink = [\n  {name = \"a\"},\n  {name = \"b\", vlan = \"x\"},\n]\n",
			errs: []string{"config.toml:4: network.uplink[1].vlan: want an integer, not a string"},
		},
		{
			name: "sub-table of the last element",
			doc:  "[[network.uplink]]\nname = \"a\"\n[[network.uplink]]\nname = \"b\"\n[network.uplink.extra]\n",
			errs: []string{"config.toml:5: network.uplink[1].extra: unknown table"},
		},
		{
			name: "rule across elements, several problems sorted",
			doc:  "[[network.uplink]]\nname = \"a\"\nvlan = 9999\n[[network.uplink]]\nname = \"a\"\n[[network.uplink.route]]\n",
			errs: []string{
				"config.toml:3: network.uplink[0].vlan: 9999 is out of range 0..4094",
				`config.toml:5: network.uplink[1].name: "a" is used twice`,
				"config.toml:6: network.uplink[1].route[0].to: missing",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc testDoc
			err := parseInto("config.toml", []byte(tt.doc), &doc)
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("parseInto: %v", err)
				}
				return
			}
			checkErrs(t, err, tt.errs)
		})
	}
}

func TestSnapshotNested(t *testing.T) {
	doc := testDoc{Network: testNetwork{Uplink: []testUplink{{Name: "a", PSK: "secret psk"}, {Name: "b"}}}}
	got := string(snapshot(&doc))
	want := `{"Board":"","Network":{"Uplink":[{"Name":"a","VLAN":0,"Route":null,"PSK":"` + Fingerprint("secret psk") + `"},{"Name":"b","VLAN":0,"Route":null,"PSK":""}]}}`
	if got != want {
		t.Errorf("snapshot = %s\nwant %s", got, want)
	}
	if doc.Network.Uplink[0].PSK != "secret psk" {
		t.Errorf("snapshot changed its input")
	}
	var v any
	if err := json.Unmarshal([]byte(got), &v); err != nil || strings.Contains(got, "secret psk") {
		t.Errorf("bad snapshot %s: %v", got, err)
	}
}

func TestSplitKey(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"network.uplink[1].route[0].to", []string{"network", "uplink", "route", "to"}},
		{`a."b.c"[2]`, []string{"a", "b.c"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitKey(tt.in); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("splitKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParentKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a.b[0].c", "a.b[0]"},
		{"a.b[0]", "a.b"},
		{"a.b", "a"},
		{"a", ""},
		{`a."b.c"`, "a"},
		{`a."b[1]".c`, `a."b[1]"`},
		{`"x\"y".z`, `"x\"y"`},
	}
	for _, tt := range tests {
		if got := parentKey(tt.in); got != tt.want {
			t.Errorf("parentKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMapKeys(t *testing.T) {
	doc := "a = 1\n\"b.c\" = 2\n[t]\nx.y = 3\n[[arr]]\n[[arr]]\nz = [1, 2]\n"
	want := map[string]pos{
		"a": {1, 1}, `"b.c"`: {2, 1}, "t": {3, 2}, "t.x": {4, 1}, "t.x.y": {4, 1},
		"arr": {5, 3}, "arr[0]": {5, 3}, "arr[1]": {6, 3}, "arr[1].z": {7, 1}, "arr[1].z[0]": {7, 6}, "arr[1].z[1]": {7, 9},
	}
	got := mapKeys([]byte(doc)).of
	for k, w := range want {
		if got[k] != w {
			t.Errorf("place of %s = %v, want %v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("mapKeys = %v, want %v", got, want)
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"board = \"auto\"\n[http]\nlisten = \"0.0.0.0:8080\"\npassword_hash = \"" + goodHash + "\"\n[journal]\nkeep = 50\n",
		"[http\n",
		"http.listen = \"[::1]:0\"\n",
		"[journal]\nkeep = \"x\"\n",
		"[[a.b]]\n[a.b.c]\nx = [{y = 1}, [2]]\n",
		"a = {b = {c = [1, {d = 2}]}}\n",
		"\"q.k\".'r' = 1\n[\"s\".t]\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err == nil {
			_ = c.Revision()
			if _, err := c.ListenIsLoopback(); err != nil {
				t.Errorf("a valid config has a bad listen: %v", err)
			}
		} else if len(collect(err)) == 0 {
			t.Errorf("error %T is not *Error or Errors: %v", err, err)
		}
		pl := mapKeys(data)
		for k := range pl.of {
			pl.find(parentKey(k))
		}
		var doc testDoc
		_ = parseInto("fuzz.toml", data, &doc)
	})
}
