package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/boxagent/boxagent/wifi"
)

const savedFile = `# the box in the office
board = "auto"

[http]
listen = "127.0.0.1:8080" # loopback until a password is set

[wifi]
interface = "wlan0"
setup_after = "2m"

# the office network
[[wifi.network]]
ssid = "office"
psk = "office-password"
priority = 5

[[wifi.network]]
ssid = "old"
psk = "old-password"

# firmware keys below
[firmware]
keep_artifacts = 3
`

func addNetwork(n wifi.Network) func([]wifi.Network) []wifi.Network {
	return func(nets []wifi.Network) []wifi.Network {
		nets = slices.DeleteFunc(nets, func(o wifi.Network) bool { return o.SSID == n.SSID })
		return append(nets, n)
	}
}

func removeNetwork(ssid string) func([]wifi.Network) []wifi.Network {
	return func(nets []wifi.Network) []wifi.Network {
		return slices.DeleteFunc(nets, func(o wifi.Network) bool { return o.SSID == ssid })
	}
}

func TestSaveWiFiNetworksKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc/boxagent/config.toml")
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(savedFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := SaveWiFiNetworks(path, addNetwork(wifi.Network{SSID: "home", PSK: "home password", Priority: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if got := ssids(cfg); got != "office,old,home" {
		t.Errorf("networks %s", got)
	}
	cfg, err = SaveWiFiNetworks(path, removeNetwork("old"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ssids(cfg); got != "office,home" {
		t.Errorf("networks %s", got)
	}
	b, _ := os.ReadFile(path)
	text := string(b)
	for _, keep := range []string{"# the box in the office\n", "# loopback until a password is set", "# the office network\n[[wifi.network]]\nssid = 'office'",
		"setup_after = \"2m\"", "# firmware keys below\n[firmware]\nkeep_artifacts = 3\n", "ssid = 'home'\npsk = 'home password'\npriority = 3\n"} {
		if !strings.Contains(text, keep) {
			t.Errorf("the file lost %q:\n%s", keep, text)
		}
	}
	if strings.Contains(text, "old-password") {
		t.Errorf("the forgotten network is still there:\n%s", text)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".config.toml.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if cfg.Firmware == nil || cfg.Firmware.KeepArtifacts != 3 || cfg.WiFi.SetupAfter != "2m" || cfg.WiFi.Interface != "wlan0" {
		t.Errorf("config %+v", cfg)
	}
}

func ssids(c *Config) string {
	var s []string
	for _, n := range c.WiFi.Networks {
		s = append(s, n.SSID)
	}
	return strings.Join(s, ",")
}

func TestSaveWiFiNetworksNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc/boxagent/config.toml")
	cfg, err := SaveWiFiNetworks(path, addNetwork(wifi.Network{SSID: "home", PSK: "home password"}))
	if err != nil {
		t.Fatal(err)
	}
	if ssids(cfg) != "home" {
		t.Errorf("networks %s", ssids(cfg))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("stat: %v %v", fi, err)
	}
	// Forgetting the last network leaves a file that still parses.
	if cfg, err = SaveWiFiNetworks(path, removeNetwork("home")); err != nil || len(cfg.WiFi.Networks) != 0 {
		t.Errorf("after forget: %+v, %v", cfg, err)
	}
}

func TestSaveWiFiNetworksInlineIsRewritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(path, []byte("# gone after the rewrite\nwifi = { interface = \"wlan0\", network = [{ ssid = \"a\", psk = \"aaaaaaaa\" }] }\n"), 0o600)
	cfg, err := SaveWiFiNetworks(path, addNetwork(wifi.Network{SSID: "b", PSK: "bbbbbbbb"}))
	if err != nil {
		t.Fatal(err)
	}
	if ssids(cfg) != "a,b" || cfg.WiFi.Interface != "wlan0" {
		t.Errorf("config %+v", cfg.WiFi)
	}
}

func TestSaveWiFiNetworksRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	bad := "[journal]\nkeep = 1\n"
	os.WriteFile(path, []byte(bad), 0o600)
	if _, err := SaveWiFiNetworks(path, addNetwork(wifi.Network{SSID: "b", PSK: "bbbbbbbb"})); err == nil || !strings.Contains(err.Error(), "journal.keep") {
		t.Errorf("an invalid file: %v", err)
	}
	os.WriteFile(path, []byte(savedFile), 0o600)
	if _, err := SaveWiFiNetworks(path, addNetwork(wifi.Network{SSID: "b", PSK: "short"})); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a bad psk: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != savedFile {
		t.Errorf("a refused save changed the file")
	}
}

func TestSetupAfterValidation(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`"2m"`, ""},
		{`"0"`, ""},
		{`"soon"`, `config.toml:3: wifi.setup_after: "soon" is not a duration`},
		{`"1s"`, `config.toml:3: wifi.setup_after: 1s is out of range 5s..24h0m0s`},
		{`"-1m"`, `config.toml:3: wifi.setup_after: "-1m" is negative`},
		{`120`, `config.toml:3: wifi.setup_after: want a string, not an integer`},
	} {
		_, err := Parse("config.toml", []byte("[wifi]\ninterface = \"wlan0\"\nsetup_after = "+c.value+"\n"))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.value, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: %v, want %s…", c.value, err, c.want)
		}
	}
	cfg, err := Parse("config.toml", []byte("[wifi]\nsetup_after = \"90s\"\n"))
	if err != nil || cfg.WiFi.SetupAfter.Duration().Seconds() != 90 {
		t.Errorf("90s: %+v %v", cfg, err)
	}
}
