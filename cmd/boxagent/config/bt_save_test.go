package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const headsetFile = `# the box in the living room
board = "auto"

[bluetooth]
pairing_window = 120

# the family's headset
[[bluetooth.headset]]
address = "00:1b:66:aa:bb:cc" # lower case on purpose
name = "Office Headset"
auto_connect = false # off while it is away

[[bluetooth.headset]]
name = "Car Kit"
address = "00:1B:66:11:22:33"

[firmware]
keep_artifacts = 3
`

func TestSaveHeadsetAutoConnect(t *testing.T) {
	for _, c := range []struct {
		name, file, address string
		on                  bool
		want                string // the file after, as text
	}{
		{"flip the value in place", headsetFile, "00:1B:66:AA:BB:CC", true,
			strings.Replace(headsetFile, "auto_connect = false # off", "auto_connect = true # off", 1)},
		{"insert the key under the header", headsetFile, "00:1B:66:11:22:33", true,
			strings.Replace(headsetFile, "[[bluetooth.headset]]\nname = \"Car Kit\"", "[[bluetooth.headset]]\nauto_connect = true\nname = \"Car Kit\"", 1)},
		{"a new headset goes at the end", headsetFile, "00:1B:66:00:00:01", true,
			headsetFile + "\n[[bluetooth.headset]]\naddress = \"00:1B:66:00:00:01\"\nauto_connect = true\n"},
		{"no file yet", "", "00:1B:66:00:00:01", false,
			"[[bluetooth.headset]]\naddress = \"00:1B:66:00:00:01\"\nauto_connect = false\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if c.file != "" {
				if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := SaveHeadsetAutoConnect(path, c.address, c.on)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != c.want {
				t.Errorf("file:\n%s\nwant:\n%s", got, c.want)
			}
			found := false
			for _, h := range cfg.Bluetooth.Headsets {
				if strings.EqualFold(h.Address, c.address) {
					found = true
					if h.AutoConnect != c.on {
						t.Errorf("%s auto_connect %v", h.Address, h.AutoConnect)
					}
				}
			}
			if !found {
				t.Errorf("%s is not among %+v", c.address, cfg.Bluetooth.Headsets)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v %v", fi.Mode(), err)
			}
		})
	}
}

// A file the text edit cannot change safely, or an invalid one, is left
// as it was.
func TestSaveHeadsetAutoConnectRefuses(t *testing.T) {
	for name, file := range map[string]string{
		"inline array": "[bluetooth]\nheadset = [{address = \"00:1B:66:AA:BB:CC\"}]\n",
		"invalid file": "board = \n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := SaveHeadsetAutoConnect(path, "00:1B:66:AA:BB:CC", true); err == nil {
				t.Error("no error")
			}
			if got, _ := os.ReadFile(path); string(got) != file {
				t.Errorf("the file changed:\n%s", got)
			}
		})
	}
}

// A headset just paired is saved with the default mode; one the file has
// already stays as the user wrote it.
func TestSaveNewHeadset(t *testing.T) {
	for _, c := range []struct {
		name, file, address string
		added               bool
		want                string
	}{
		{"music unless set", headsetFile, "00:1B:66:00:00:01", true,
			headsetFile + "\n[[bluetooth.headset]]\naddress = \"00:1B:66:00:00:01\"\nmode = \"music\"\n"},
		{"the configured default mode", "[bluetooth]\ndefault_mode = \"call\"\n", "00:1B:66:00:00:01", true,
			"[bluetooth]\ndefault_mode = \"call\"\n\n[[bluetooth.headset]]\naddress = \"00:1B:66:00:00:01\"\nmode = \"call\"\n"},
		{"no file yet", "", "00:1B:66:00:00:01", true,
			"[[bluetooth.headset]]\naddress = \"00:1B:66:00:00:01\"\nmode = \"music\"\n"},
		{"a known headset is left alone", headsetFile, "00:1B:66:AA:BB:CC", false, headsetFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if c.file != "" {
				if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, added, err := SaveNewHeadset(path, c.address)
			if err != nil {
				t.Fatal(err)
			}
			if added != c.added {
				t.Errorf("added %v, want %v", added, c.added)
			}
			got, _ := os.ReadFile(path)
			if string(got) != c.want {
				t.Errorf("file:\n%s\nwant:\n%s", got, c.want)
			}
			h, ok := cfg.Bluetooth.Headset(c.address)
			if !ok {
				t.Fatalf("%s is not among %+v", c.address, cfg.Bluetooth.Headsets)
			}
			if c.added && h.Mode != cfg.Bluetooth.NewHeadsetMode() {
				t.Errorf("mode %q, want %q", h.Mode, cfg.Bluetooth.NewHeadsetMode())
			}
		})
	}
	// An invalid file is refused and left as it was.
	path := filepath.Join(t.TempDir(), "config.toml")
	bad := "[bluetooth]\ndefault_mode = \"loud\"\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SaveNewHeadset(path, "00:1B:66:00:00:01"); err == nil || !strings.Contains(err.Error(), "default_mode") {
		t.Errorf("invalid default_mode: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != bad {
		t.Errorf("the invalid file was changed:\n%s", got)
	}
}
