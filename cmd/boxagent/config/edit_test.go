package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// TestConcurrentEditsLoseNothing runs 100 edits at once from four kinds of
// writer (Wi-Fi joins, Wi-Fi forgets, headsets' auto_connect, uplinks added
// as text as `net uplink add` does): every one must be in the file after.
// Before the one lock, uplink edits and the others had a lock each and 9 of
// 40 edits were lost.
func TestConcurrentEditsLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	const n = 25
	initial := savedFile
	for i := range n {
		initial = fmt.Sprintf("%s\n[[wifi.network]]\nssid = \"gone%d\"\npsk = \"password%d\"\n", initial, i, i)
	}
	if err := os.WriteFile(path, []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		wg.Add(4)
		go func() {
			defer wg.Done()
			_, err := SaveWiFiNetworks(path, addNetwork(wifi.Network{SSID: fmt.Sprintf("new%d", i), PSK: "new password"}))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := SaveWiFiNetworks(path, removeNetwork(fmt.Sprintf("gone%d", i)))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := SaveHeadsetAutoConnect(path, fmt.Sprintf("00:1B:66:AA:BB:%02X", i), true)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := Edit(path, func(text []byte, _ *Config) ([]byte, error) {
				return fmt.Appendf(slices.Clone(text), "\n[[network.uplink]]\nname = \"u%d\"\nparent = \"eth0\"\nvlan = %d\n[network.uplink.ipv4]\nmethod = \"dhcp\"\ndefault_route = false\n", i, 100+i), nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	var ssids []string
	for _, w := range cfg.WiFi.Networks {
		ssids = append(ssids, w.SSID)
	}
	lost := 0
	for i := range n {
		if !slices.Contains(ssids, fmt.Sprintf("new%d", i)) {
			t.Errorf("joined network new%d lost", i)
			lost++
		}
		if slices.Contains(ssids, fmt.Sprintf("gone%d", i)) {
			t.Errorf("forgotten network gone%d is back", i)
			lost++
		}
		addr := fmt.Sprintf("00:1B:66:AA:BB:%02X", i)
		if !slices.ContainsFunc(cfg.Bluetooth.Headsets, func(h bluetooth.Headset) bool { return h.Address == addr && h.AutoConnect }) {
			t.Errorf("headset %s lost", addr)
			lost++
		}
		if !slices.ContainsFunc(cfg.Network.Uplinks, func(u network.Uplink) bool { return u.Name == fmt.Sprintf("u%d", i) }) {
			t.Errorf("uplink u%d lost", i)
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d edits lost", lost, 4*n)
	}
}

// TestEditRefusesAndLeavesTheFile: an edit that fails, or whose text does
// not parse, writes nothing.
func TestEditRefusesAndLeavesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(path, []byte(savedFile), 0o600)
	for name, change := range map[string]func([]byte, *Config) ([]byte, error){
		"error": func([]byte, *Config) ([]byte, error) { return nil, fmt.Errorf("no") },
		"invalid": func(text []byte, _ *Config) ([]byte, error) {
			return append(slices.Clone(text), "\n[[network.uplink]]\nvlan = 5000\n"...), nil
		},
		"garbage": func([]byte, *Config) ([]byte, error) { return []byte("board = "), nil },
	} {
		if _, err := Edit(path, change); err == nil {
			t.Errorf("%s: no error", name)
		}
		if data, _ := os.ReadFile(path); string(data) != savedFile {
			t.Errorf("%s: the file changed", name)
		}
	}
}
