package localapi

import (
	"github.com/boxagent/boxagent/audio"
	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/firmware"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// Route is one row of the API's route table.
type Route struct {
	Method string
	// Path is a net/http pattern: "/api/v1/bt/devices/{address}".
	Path string
	// Request is the wire type of the body (a zero value), nil for none;
	// Result is what the call answers or, for an operation, the type of
	// the operation's result.
	Request, Result any
	// Mutating calls are journalled operations (but cancel, which ends
	// one); over TCP they need the session's CSRF token.
	Mutating bool
	// Long operations answer 202 at once and report progress as
	// events; short ones answer with their final record.
	Long bool
	// Session calls are the page's login, logout and session: served
	// over TCP only, and before a login.
	Session bool
	// Calls is where the handler leads: the daemon's domain and the
	// domain package's method.
	Calls string
	// Doc is a line for people, in docs/ARCHITECTURE.md.
	Doc string
}

// Pattern is the route as net/http and the fleet's allowed routes write
// it: "POST /api/v1/bt/scan".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Routes is the API: every call the CLI, the page, the fleet link and
// scripts can make, and nothing else. The server serves its own calls; the
// daemon's domains give every other row its handler (Server.Handle).
// docs/ARCHITECTURE.md's table is made from it (TestArchitectureRoutes)
// and the fleet link allows commands by its rows.
var Routes = []Route{
	{Method: "GET", Path: "/api/v1/status", Result: apitype.Status{}, Calls: "agent.Status",
		Doc: "version, uptime, board, config revision, listeners, subsystem health"},
	{Method: "GET", Path: "/api/v1/events", Result: apitype.Event{}, Calls: "Broker.Subscribe",
		Doc: "`text/event-stream`; `Last-Event-ID` replays what the broker still holds"},
	{Method: "GET", Path: "/api/v1/operations", Result: []journal.Operation{}, Calls: "journal.Store.List",
		Doc: "the journal, newest first: `?limit&before&kind&origin&state`"},
	{Method: "GET", Path: "/api/v1/operations/{id}", Result: journal.Operation{}, Calls: "journal.Store.Get",
		Doc: "one operation with its progress and settings snapshot"},
	{Method: "POST", Path: "/api/v1/operations/{id}/cancel", Result: apitype.CancelAnswer{}, Mutating: true, Calls: "operations.cancel",
		Doc: "cancels a running operation (202); an ended one is `operation.finished`"},
	{Method: "GET", Path: "/api/v1/doctor", Result: apitype.Doctor{}, Calls: "agent.Doctor",
		Doc: "checks with OK/WARN/FAIL/SKIP and a fix"},
	{Method: "GET", Path: "/api/v1/board", Result: board.Detection{}, Calls: "agent.Board",
		Doc: "the board detection in effect"},
	{Method: "GET", Path: "/api/v1/boards", Result: []board.Profile{}, Calls: "agent.Boards",
		Doc: "the known board profiles"},
	{Method: "POST", Path: "/api/v1/config/reload", Result: apitype.ReloadResult{}, Mutating: true, Calls: "agent.ReloadConfig",
		Doc: "re-reads the config file, validated whole"},
	{Method: "POST", Path: "/api/v1/login", Request: apitype.LoginRequest{}, Result: apitype.SessionInfo{}, Session: true, Calls: "Sessions.login",
		Doc: "a session cookie and its CSRF token"},
	{Method: "POST", Path: "/api/v1/logout", Result: apitype.SessionInfo{}, Session: true, Calls: "Sessions.logout"},
	{Method: "GET", Path: "/api/v1/session", Result: apitype.SessionInfo{}, Session: true, Calls: "Sessions.info"},
	{Method: "GET", Path: "/api/v1/fleet", Result: apitype.FleetInfo{}, Calls: "fleetDomain → fleet.Link.Info",
		Doc: "the fleet link: configured, connected broker, id, last acknowledged record, certificate expiry"},

	{Method: "GET", Path: "/api/v1/bt/adapters", Result: []bluetooth.Adapter{}, Calls: "btDomain → bluetooth.Client.Adapters"},
	{Method: "GET", Path: "/api/v1/bt/devices", Result: []bluetooth.Device{}, Calls: "btDomain → bluetooth.Client.Devices",
		Doc: "headsets first"},
	{Method: "GET", Path: "/api/v1/bt/devices/{address}", Result: bluetooth.Device{}, Calls: "btDomain → bluetooth.Client.Device"},
	{Method: "POST", Path: "/api/v1/bt/scan", Request: apitype.BtScanRequest{}, Result: []bluetooth.Device{}, Mutating: true, Long: true,
		Calls: "btDomain → bluetooth.Client.Scan", Doc: "each find as a `bt.scan` event; stops early at `until`"},
	{Method: "POST", Path: "/api/v1/bt/pair", Request: apitype.BtAddressRequest{}, Result: apitype.BtPairResult{}, Mutating: true, Long: true,
		Calls: "btDomain → bluetooth.Client.Pair, config.SaveNewHeadset",
		Doc:   "pair, trust, connect; a new headset is saved as `[[bluetooth.headset]]` with `[bluetooth] default_mode`"},
	{Method: "POST", Path: "/api/v1/bt/connect", Request: apitype.BtAddressRequest{}, Result: bluetooth.Device{}, Mutating: true,
		Calls: "btDomain → bluetooth.Client.Connect"},
	{Method: "POST", Path: "/api/v1/bt/disconnect", Request: apitype.BtAddressRequest{}, Result: bluetooth.Device{}, Mutating: true,
		Calls: "btDomain → bluetooth.Client.Disconnect"},
	{Method: "POST", Path: "/api/v1/bt/remove", Request: apitype.BtAddressRequest{}, Result: apitype.BtRemoveResult{}, Mutating: true,
		Calls: "btDomain → bluetooth.Client.Remove"},
	{Method: "POST", Path: "/api/v1/bt/power", Request: apitype.BtPowerRequest{}, Result: bluetooth.Adapter{}, Mutating: true,
		Calls: "btDomain → bluetooth.Client.SetPowered"},
	{Method: "GET", Path: "/api/v1/bt/autoconnect", Result: []bluetooth.Headset{}, Calls: "btDomain → config",
		Doc: "the configured headsets"},
	{Method: "POST", Path: "/api/v1/bt/autoconnect", Request: apitype.BtAutoConnectRequest{}, Result: apitype.BtAutoConnectResult{}, Mutating: true,
		Calls: "btDomain → config.SaveHeadsetAutoConnect, agent.ReloadConfig",
		Doc:   "edits `[[bluetooth.headset]] auto_connect` in the config file, then reloads"},
	{Method: "POST", Path: "/api/v1/bt/pairable", Request: apitype.BtPairableRequest{}, Result: apitype.BtPairableResult{}, Mutating: true,
		Calls: "btDomain → bluetooth.Client.OpenPairingWindow, ClosePairingWindow"},

	{Method: "GET", Path: "/api/v1/audio", Result: audio.State{}, Calls: "audioDomain → audio.Client.State",
		Doc: "cards, sinks, sources, defaults"},
	{Method: "POST", Path: "/api/v1/audio/cards/{name}/mode", Request: apitype.AudioModeRequest{}, Result: audio.ModeResult{}, Mutating: true,
		Calls: "audioDomain → audio.Client.SetMode", Doc: "music, call, off or a profile; a card or a headset's address"},
	{Method: "POST", Path: "/api/v1/audio/default", Request: apitype.AudioDefaultRequest{}, Result: apitype.AudioDefaultResult{}, Mutating: true,
		Calls: "audioDomain → audio.Client.SetFallback"},
	{Method: "POST", Path: "/api/v1/audio/volume", Request: apitype.AudioVolumeRequest{}, Result: audio.Device{}, Mutating: true,
		Calls: "audioDomain → audio.Client.SetVolume, SetMute"},
	{Method: "POST", Path: "/api/v1/audio/test", Request: apitype.AudioTestRequest{}, Result: audio.TestResult{}, Mutating: true, Long: true,
		Calls: "audioDomain → audio.PlayRecord", Doc: "play a tone and record"},

	{Method: "GET", Path: "/api/v1/net", Result: network.View{}, Calls: "networkDomain → network.Manager.View",
		Doc: "wired uplinks with their leases and sessions, the Wi-Fi link, the kernel's links, addresses and routes"},
	{Method: "POST", Path: "/api/v1/net/apply", Result: network.ApplyResult{}, Mutating: true, Calls: "networkDomain → network.Manager.Apply",
		Doc: "applies `[[network.uplink]]` again"},
	{Method: "POST", Path: "/api/v1/net/renew", Request: apitype.NetRenewRequest{}, Result: apitype.NetRenewResult{}, Mutating: true,
		Calls: "networkDomain → network.Manager.Renew"},
	{Method: "POST", Path: "/api/v1/net/uplinks", Request: network.Uplink{}, Result: apitype.NetEditResult{}, Mutating: true,
		Calls: "networkDomain → config.Edit, agent.ReloadConfig", Doc: "adds an uplink to the config file and applies it"},
	{Method: "DELETE", Path: "/api/v1/net/uplinks/{name}", Result: apitype.NetEditResult{}, Mutating: true,
		Calls: "networkDomain → config.Edit, agent.ReloadConfig", Doc: "removes an uplink from the config file and applies the rest"},

	{Method: "GET", Path: "/api/v1/wifi", Result: apitype.WiFiStatus{}, Calls: "wifiDomain → wifi.Client.Status, SignalPoll",
		Doc: "the station, a fresh signal reading, the setup hotspot"},
	{Method: "POST", Path: "/api/v1/wifi/scan", Result: []wifi.BSS{}, Mutating: true, Long: true, Calls: "wifiDomain → wifi.Client.Scan"},
	{Method: "POST", Path: "/api/v1/wifi/connect", Request: wifi.Network{}, Result: wifi.Status{}, Mutating: true,
		Calls: "wifiDomain → wifi.Setup.Connect → wifi.Client.Connect, config.SaveWiFiNetworks", Doc: "joins (closing the setup hotspot first) and saves a joined network"},
	{Method: "POST", Path: "/api/v1/wifi/forget", Request: apitype.WiFiForgetRequest{}, Result: wifi.Status{}, Mutating: true,
		Calls: "wifiDomain → wifi.Setup.Forget → wifi.Client.Forget, config.SaveWiFiNetworks"},
	{Method: "GET", Path: "/api/v1/wifi/setup", Result: wifi.SetupStatus{}, Calls: "wifiDomain → wifi.Setup.Status",
		Doc: "the setup hotspot; its password over the unix socket only"},
	{Method: "POST", Path: "/api/v1/wifi/setup/start", Result: wifi.SetupStatus{}, Mutating: true, Calls: "wifiDomain → wifi.Setup.Start → wifi.StartHotspot",
		Doc: "opens the setup hotspot"},
	{Method: "POST", Path: "/api/v1/wifi/setup/stop", Result: wifi.SetupStatus{}, Mutating: true, Calls: "wifiDomain → wifi.Setup.Stop → wifi.Hotspot.Stop",
		Doc: "closes it; the saved networks are joined again"},

	{Method: "GET", Path: "/api/v1/fw", Result: apitype.FWStatus{}, Calls: "firmwareDomain → firmware.Store.List, Watcher.List",
		Doc: "the board's recovery, the sticks and their mounts, the artifacts, the one staged last"},
	{Method: "POST", Path: "/api/v1/fw/add", Request: apitype.FWAddRequest{}, Result: firmware.Artifact{}, Mutating: true, Long: true,
		Calls: "firmwareDomain → firmware.Store.Import", Doc: "a file on the box or a URL on the LAN, verified"},
	{Method: "POST", Path: "/api/v1/fw/stage", Request: apitype.FWStageRequest{}, Result: firmware.StageResult{}, Mutating: true, Long: true,
		Calls: "firmwareDomain → firmware.Stager.Stage", Doc: "writes an artifact onto a stick and verifies it from the stick"},
	{Method: "POST", Path: "/api/v1/fw/eject", Request: apitype.FWStageRequest{}, Result: firmware.EjectResult{}, Mutating: true,
		Calls: "firmwareDomain → firmware.Stager.Eject"},
	{Method: "POST", Path: "/api/v1/fw/rollback", Request: apitype.FWStageRequest{}, Result: firmware.StageResult{}, Mutating: true, Long: true,
		Calls: "firmwareDomain → firmware.Store.Previous, Stager.Stage", Doc: "stages the artifact staged before the current one"},
}
