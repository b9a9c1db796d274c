package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetCLI drives the net commands against a daemon whose [network]
// table names a parent this machine does not have: at start the uplink
// waits for it, a later apply is refused whole (nothing changes), status
// says so, and the API's errors reach the console with their exit codes.
func TestNetCLI(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "board = \"generic-x86_64\"\n[[network.uplink]]\nparent = \"nosuch0\"\nvlan = 45\n[network.uplink.ipv4]\nmethod = \"dhcp\"\nvendor_class = \"IPTV_TEST\"\n")
	p := startAgent(t, root)

	// At start the uplink waits for its parent (a USB adapter may come
	// later); an apply asked for later refuses the table.
	out, stderr, code := p.run("status")
	if code != 0 || !strings.Contains(out, "network:    degraded: nosuch0.45 down (waiting for its parent link \"nosuch0\")") {
		t.Errorf("status: exit %d\n%s%s", code, out, stderr)
	}
	_, stderr, code = p.run("net", "apply")
	if code != 1 || !strings.Contains(stderr, "network.uplink[0].parent: no link \"nosuch0\" on this box") || !strings.Contains(stderr, "(network.invalid)") || !strings.Contains(stderr, "hint: ") {
		t.Errorf("net apply: exit %d, stderr %q", code, stderr)
	}
	out, stderr, code = p.run("history", "--kind", "net.apply")
	if code != 0 || !strings.Contains(out, "failed") {
		t.Errorf("history of net.apply: exit %d\n%s%s", code, out, stderr)
	}

	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"net", "renew"}, 2, "net renew takes one link name"},
		{[]string{"net", "renew", "a-name-longer-than-15"}, 2, "Linux allows at most 15"},
		{[]string{"net", "renew", "eth0:1"}, 2, "holds '/', ':' or a space"},
		{[]string{"net", "renew", "nope0"}, 1, `no such DHCP uplink "nope0"`},
		{[]string{"net", "frob"}, 2, `unknown verb "frob"`},
		{[]string{"net", "show", "x"}, 2, "takes no arguments"},
	} {
		_, stderr, code := p.run(c.args...)
		if code != c.code || !strings.Contains(stderr, c.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.stderr)
		}
	}

	out, stderr, code = p.run("net", "show")
	if code != 0 || !strings.Contains(out, "LINK ") || !strings.Contains(out, "\nlo ") || !strings.Contains(out, "ROUTE") {
		t.Errorf("net show: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = p.run("net", "show", "--json")
	var v struct {
		Uplinks []any `json:"uplinks"`
		Links   []struct {
			Name string `json:"name"`
		} `json:"links"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || len(v.Links) == 0 || v.Uplinks == nil {
		t.Errorf("net show --json: exit %d, %v\n%s", code, err, out)
	}
}

// TestNetConfigRefused: bad [network] tables are refused by config
// check with the key that is wrong.
func TestNetConfigRefused(t *testing.T) {
	requireProcesses(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name, table, want string
	}{
		{"vlan 0", "parent = \"eth0\"\nvlan = 0", "network.uplink[0].vlan: 0 is out of range 1..4094"},
		{"vlan 4095", "parent = \"eth0\"\nvlan = 4095", "network.uplink[0].vlan: 4095 is out of range 1..4094"},
		{"vlan abc", "parent = \"eth0\"\nvlan = \"abc\"", "network.uplink[0].vlan"},
		{"long name", "name = \"iptv-uplink-long\"\nparent = \"eth0\"\nvlan = 45", "network.uplink[0].name: link name \"iptv-uplink-long\" is 16 bytes long"},
		{"bad hex", "parent = \"eth0\"\n[network.uplink.ipv4]\nmethod = \"dhcp\"\nvendor_class = \"hex:0g\"", "network.uplink[0].ipv4.vendor_class: \"hex:0g\" is not hex"},
		{"pppoe without user", "parent = \"eth0\"\nvlan = 35\n[network.uplink.ipv4]\nmethod = \"pppoe\"", "network.uplink[0].ipv4.user: missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := "[[network.uplink]]\n" + c.table + "\n"
			if !strings.Contains(body, "[network.uplink.ipv4]") {
				body += "[network.uplink.ipv4]\nmethod = \"off\"\n"
			}
			f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
			if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, stderr, code := runCLI(t, "config", "check", f)
			if code != 1 || !strings.Contains(out+stderr, c.want) {
				t.Errorf("exit %d, output %q%q; want 1 and %q", code, out, stderr, c.want)
			}
		})
	}
}

// TestNetUplinkEdit: net uplink add and del edit the config file in
// place (comments kept, mode 0600), validate first and apply; bad input
// changes nothing.
func TestNetUplinkEdit(t *testing.T) {
	root := t.TempDir()
	const head = "# the box's settings\nboard = \"generic-x86_64\"\n"
	path := writeConfig(t, root, head)
	p := startAgent(t, root)
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--parent", "nosuch0", "--vlan", "45"}, 1, `network.uplink[0].parent: no link "nosuch0"`},
		{[]string{"--parent", "lo", "--vlan", "abc"}, 2, `invalid argument "abc" for "--vlan"`},
		{[]string{"--parent", "lo", "--vlan", "0"}, 2, "--vlan: 0 is out of range 1..4094"},
		{[]string{"--parent", "lo", "--vlan", "4095"}, 2, "--vlan: 4095 is out of range 1..4094"},
		{[]string{"--parent", "lo", "--vlan", "45", "--name", "iptv-uplink-long"}, 2, "--name: link name \"iptv-uplink-long\" is 16 bytes long"},
		{[]string{"--parent", "lo", "--vendor-class", "hex:zz"}, 2, "--vendor-class: \"hex:zz\" is not hex"},
		{[]string{"--parent", "lo", "--vlan", "35", "--method", "pppoe"}, 2, "--user: missing"},
		{[]string{"--parent", "lo", "--mac", "01:00:5e:00:00:01"}, 2, "--mac: 01:00:5e:00:00:01 is a multicast address"},
		{[]string{"--parent", "lo", "--option", "125"}, 2, `--option "125" is not CODE=VALUE`},
		{[]string{"--parent", "lo", "--route", "239.0.0.0/8 dev lo"}, 2, `--route "239.0.0.0/8 dev lo" is not 'TO' or 'TO via GW'`},
		{[]string{"--parent", "lo", "--no-default-route", "--ipv6", "auto", "--ipv6-vendor-class", "IPTV_STB"}, 2, "--enterprise-number: missing"},
		{[]string{"--parent", "lo", "--method", "static", "--address", "192.0.2.10/24", "--search", "ok.example,bad domain"}, 2, `--search: "bad domain" is not a domain name`},
		{[]string{"--parent", "lo", "--vlan", "45", "--dot1x-eap", "md5"}, 2, "--dot1x-identity: missing"},
		{[]string{"--parent", "lo", "--vlan", "45", "--dot1x-eap", "md5", "--dot1x-identity", "box"}, 2, "--password-stdin: missing: set password or password_file"},
		{[]string{"--parent", "lo", "--vlan", "45", "--dot1x-eap", "peap", "--dot1x-identity", "box", "--dot1x-password-file", "/pw", "--dot1x-ca-cert", "ca.pem"}, 2, `--dot1x-ca-cert: "ca.pem" is not an absolute path`},
		{[]string{"--parent", "lo", "--vlan", "35", "--method", "pppoe", "--user", "u", "--dot1x-eap", "md5", "--dot1x-identity", "box", "--dot1x-password-file", "/pw"}, 2, `--dot1x-eap: only for ipv4.method "dhcp"`},
	} {
		_, stderr, code := p.run(append([]string{"net", "uplink", "add"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.stderr) {
			t.Errorf("uplink add %v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.stderr)
		}
		if got := read(); got != head {
			t.Fatalf("a refused add changed the file:\n%s", got)
		}
	}

	out, stderr, code := p.run("net", "uplink", "add", "--parent", "lo", "--method", "off")
	if code != 0 || !strings.Contains(out, "added uplink lo") {
		t.Fatalf("uplink add: exit %d\n%s%s", code, out, stderr)
	}
	got := read()
	if !strings.HasPrefix(got, head) || !strings.Contains(got, "[[network.uplink]]\nparent = 'lo'\n\n[network.uplink.ipv4]\nmethod = 'off'\n") {
		t.Errorf("file after add:\n%s", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	out, _, _ = p.run("status")
	if !strings.Contains(out, "network:    ok: lo off up") {
		t.Errorf("status after add:\n%s", out)
	}
	_, stderr, code = p.run("net", "uplink", "add", "--parent", "lo", "--method", "off")
	if code != 1 || !strings.Contains(stderr, `link "lo" is already an uplink`) {
		t.Errorf("second add: exit %d, stderr %q", code, stderr)
	}

	out, stderr, code = p.run("net", "uplink", "del", "lo")
	if code != 0 || !strings.Contains(out, "removed uplink lo") {
		t.Fatalf("uplink del: exit %d\n%s%s", code, out, stderr)
	}
	if got := read(); got != head+"\n" {
		t.Errorf("file after del: %q, want %q", got, head+"\n")
	}
	_, stderr, code = p.run("net", "uplink", "del", "lo")
	if code != 1 || !strings.Contains(stderr, `no uplink with link name "lo"`) {
		t.Errorf("second del: exit %d, stderr %q", code, stderr)
	}
	out, _, _ = p.run("history", "--kind", "net.uplink.add")
	if !strings.Contains(out, "done") || !strings.Contains(out, "failed") {
		t.Errorf("history of uplink add:\n%s", out)
	}
}
