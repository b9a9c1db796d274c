package apitype

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/wifi"
)

var updateWire = flag.Bool("update-wire", false, "rewrite testdata/wire.golden")

// TestWireGolden locks the JSON the API speaks: every request, result,
// event and error is written here once filled and once empty, and must
// match testdata/wire.golden byte for byte. Requests are also read back
// (as the API reads them, unknown fields refused) and written again, so
// what a client sends round-trips. A change here is a change for users:
// the commit that makes it says why.
func TestWireGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, c := range wireSamples() {
		for i, v := range []any{c.filled, reflect.New(reflect.TypeOf(c.filled)).Elem().Interface()} {
			data, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			fmt.Fprintf(&buf, "== %s %s\n%s\n", c.name, []string{"filled", "empty"}[i], data)
			if !c.request {
				continue
			}
			back := reflect.New(reflect.TypeOf(v))
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Errorf("%s: cannot read back: %v", c.name, err)
			}
			again, _ := json.MarshalIndent(back.Elem().Interface(), "", "  ")
			if !bytes.Equal(again, data) {
				t.Errorf("%s does not round-trip:\n%s\n%s", c.name, data, again)
			}
		}
	}
	path := filepath.Join("testdata", "wire.golden")
	if *updateWire {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("the API's JSON changed (go test -run TestWireGolden -update-wire rewrites %s; say why in the commit):\n%s", path, buf.String())
	}
}

type wireSample struct {
	name    string
	request bool
	filled  any
}

func wireSamples() []wireSample {
	when := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	yes, pct, free := true, 42.5, int64(1<<30)
	art := firmware.Artifact{SHA256: "ab12", Size: 3}
	adapter := bluetooth.Adapter{Name: "hci0", Address: "00:1B:66:AA:BB:01", Powered: true}
	dev := bluetooth.Device{Address: "00:1B:66:AA:BB:CC", Name: "office headset", Paired: true}
	hs := bluetooth.Headset{Address: "00:1B:66:AA:BB:CC", Name: "office headset", AutoConnect: true, Mode: "music"}
	reload := ReloadResult{Previous: "r1", Revision: "r2", Changed: true, Notes: []string{"n"}}
	return []wireSample{
		{name: "Status", filled: Status{Version: "1.0", Started: when, UptimeSeconds: 1.5,
			Board:      BoardInfo{ID: "virtual-board", Name: "Virtual", Reason: "dt"},
			Config:     ConfigInfo{Path: "/etc/boxagent/config.toml", Revision: "r", Loaded: when, Default: true},
			Listeners:  Listeners{Socket: "/run/boxagent/api.sock", HTTP: "127.0.0.1:8080", HTTPS: true, CertSHA256: "cc"},
			Subsystems: []Subsystem{{Name: "audio", State: StateOK, Detail: "d"}}}},
		{name: "Doctor", filled: Doctor{Checks: []Check{{Name: "n", Result: CheckWarn, Detail: "d", Fix: "f"}}}},
		{name: "Accepted", filled: Accepted{ID: 7, Location: "/api/v1/operations/7"}},
		{name: "ReloadResult", filled: reload},
		{name: "ErrorBody", filled: map[string]*Error{"error": {Status: 409, Code: "fw.busy", Message: "m", Hint: "h"}}},
		{name: "CancelAnswer", filled: CancelAnswer{ID: 7, State: "cancelling"}},
		{name: "Event", filled: Event{ID: 3, Time: when, Type: "operation", Data: json.RawMessage(`{"id":7}`)}},
		{name: "OperationEvent", filled: OperationEvent{ID: 7, Kind: "fw.add", State: journal.StateRunning,
			Progress: &journal.Progress{Message: "m", Done: 1, Total: 2}, Error: &journal.Failure{Code: "c", Message: "m", Hint: "h"}}},
		{name: "Board", filled: board.Detection{Profile: board.Profile{ID: "virtual-board", Name: "Virtual"}, Reason: "dt"}},
		{name: "FleetInfo", filled: FleetInfo{Configured: true, Error: "e", FleetLink: FleetLink{Connected: true, Broker: "b", ID: "box", Acked: 3, CertNotAfter: &when}}},
		{name: "BtScanRequest", request: true, filled: BtScanRequest{Timeout: 5, Until: "x"}},
		{name: "BtAddressRequest", request: true, filled: BtAddressRequest{Address: dev.Address}},
		{name: "BtPairableRequest", request: true, filled: BtPairableRequest{On: true, Timeout: 60}},
		{name: "BtPowerRequest", request: true, filled: BtPowerRequest{Adapter: "hci0", On: true}},
		{name: "BtAutoConnectRequest", request: true, filled: BtAutoConnectRequest{Address: dev.Address, On: true}},
		{name: "BtAutoConnectResult", filled: BtAutoConnectResult{Address: dev.Address, AutoConnect: true, Config: "/etc/boxagent/config.toml", Reload: reload}},
		{name: "BtPairableResult", filled: BtPairableResult{Adapter: adapter, Until: &when}},
		{name: "BtPairResult", filled: BtPairResult{Device: dev, Saved: &hs}},
		{name: "BtRemoveResult", filled: BtRemoveResult{Address: dev.Address, Removed: "true"}},
		{name: "AudioModeRequest", request: true, filled: AudioModeRequest{Mode: "call"}},
		{name: "AudioDefaultRequest", request: true, filled: AudioDefaultRequest{Kind: "sink", Name: "s"}},
		{name: "AudioDefaultResult", filled: AudioDefaultResult{FallbackSink: "s", FallbackSource: "m"}},
		{name: "AudioVolumeRequest", request: true, filled: AudioVolumeRequest{Device: "s", Percent: &pct, Mute: &yes}},
		{name: "AudioTestRequest", request: true, filled: AudioTestRequest{Sink: "s", Source: "m", Seconds: 2, Play: &yes, Frequency: 440}},
		{name: "NetRenewRequest", request: true, filled: NetRenewRequest{Link: "eth0.45"}},
		{name: "NetRenewResult", filled: NetRenewResult{Link: "eth0.45", State: "renewing"}},
		{name: "WiFiForgetRequest", request: true, filled: WiFiForgetRequest{SSID: "home"}},
		{name: "WiFiSetupNetwork", filled: WiFiSetupNetwork{SSID: "home", Signal: -40, Security: "wpa2", Band: "2.4"}},
		{name: "WiFiSetupConnectRequest", request: true, filled: WiFiSetupConnectRequest{SSID: "home", Password: "p", Hidden: true}},
		{name: "WiFiStatus", filled: WiFiStatus{Status: wifi.Status{Interface: "wlan0", State: "completed"}, Setup: wifi.SetupStatus{State: "off", SSID: "boxagent-setup"}}},
		{name: "FWStatus", filled: FWStatus{Board: "virtual-board", Recovery: board.Firmware{Method: board.FirmwareUSBStick, Package: "update.zip"},
			Sticks: []firmware.Stick{{Name: "sda"}}, Artifacts: []firmware.Artifact{art}, Staged: &art,
			Mounts: map[string][]FWMount{"sda": {{Device: "sda1", Dir: "/media/sda1", ReadOnly: true, Free: &free}}}}},
		{name: "FWAddRequest", request: true, filled: FWAddRequest{Path: "/tmp/update.zip", URL: "http://h/u.zip", SHA256: "ab12"}},
		{name: "FWStageRequest", request: true, filled: FWStageRequest{Artifact: "ab12", Device: "sda1"}},
		{name: "SessionInfo", filled: SessionInfo{Required: true, Authenticated: true, CSRF: "t"}},
		{name: "LoginRequest", request: true, filled: LoginRequest{Password: "p"}},
		{name: "NetEditResult", filled: NetEditResult{Config: "/etc/boxagent/config.toml", Reload: reload}},
	}
}
