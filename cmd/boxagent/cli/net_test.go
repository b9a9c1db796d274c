package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetCLI drives the net commands against a daemon whose [network]
// table names a parent this machine does not have: the table is refused
// whole (nothing changes), status says so, and the API's errors reach
// the console with their exit codes.
func TestNetCLI(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "board = \"generic-x86_64\"\n[[network.uplink]]\nparent = \"nosuch0\"\nvlan = 45\n[network.uplink.ipv4]\nmethod = \"dhcp\"\nvendor_class = \"IPTV_TEST\"\n")
	p := startAgent(t, root)

	out, stderr, code := p.run("status")
	if code != 0 || !strings.Contains(out, "network:    degraded: invalid [network] settings: network.uplink[0].parent: no link \"nosuch0\"") {
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
