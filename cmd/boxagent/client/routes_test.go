package client

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/network"
	"github.com/boxagent/boxagent/wifi"
)

// TestCallsAreRoutes: every call of the client is a row of the API's
// route table, and decodes what that row answers (its result type), so
// the client cannot drift from the server as its FWStatus once did.
func TestCallsAreRoutes(t *testing.T) {
	mux := http.NewServeMux()
	rows := map[string]localapi.Route{}
	for _, r := range localapi.Routes {
		mux.HandleFunc(r.Pattern(), func(http.ResponseWriter, *http.Request) {})
		rows[r.Pattern()] = r
	}
	ctx := context.Background()
	// Each call gives back its typed answer (nil: it answers only the
	// operation's record).
	calls := map[string]func(c *Client) (any, error){
		"Status":          func(c *Client) (any, error) { return c.Status(ctx) },
		"Doctor":          func(c *Client) (any, error) { return c.Doctor(ctx) },
		"Operations":      func(c *Client) (any, error) { return c.Operations(ctx, journal.Query{Limit: 2}) },
		"Operation":       func(c *Client) (any, error) { return c.Operation(ctx, 1) },
		"CancelOperation": func(c *Client) (any, error) { return nil, c.CancelOperation(ctx, 1) },
		"ReloadConfig":    func(c *Client) (any, error) { _, err := c.ReloadConfig(ctx); return nil, err },
		"Board":           func(c *Client) (any, error) { return c.Board(ctx) },
		"Boards":          func(c *Client) (any, error) { return c.Boards(ctx) },
		"BtAdapters":      func(c *Client) (any, error) { return c.BtAdapters(ctx) },
		"BtDevices":       func(c *Client) (any, error) { return c.BtDevices(ctx) },
		"BtDevice":        func(c *Client) (any, error) { return c.BtDevice(ctx, "00:1B:66:AA:BB:CC") },
		"BtScan":          func(c *Client) (any, error) { r, _, err := c.BtScan(ctx, 0, "", nil); return r, err },
		"BtPair":          func(c *Client) (any, error) { r, _, err := c.BtPair(ctx, "x", nil); return r, err },
		"BtConnect":       func(c *Client) (any, error) { r, _, err := c.BtConnect(ctx, "x"); return r, err },
		"BtDisconnect":    func(c *Client) (any, error) { r, _, err := c.BtDisconnect(ctx, "x"); return r, err },
		"BtRemove":        func(c *Client) (any, error) { r, _, err := c.BtRemove(ctx, "x"); return r, err },
		"BtPairable":      func(c *Client) (any, error) { r, _, err := c.BtPairable(ctx, true, 0); return r, err },
		"BtPower":         func(c *Client) (any, error) { r, _, err := c.BtPower(ctx, "", true); return r, err },
		"BtAutoConnect":   func(c *Client) (any, error) { r, _, err := c.BtAutoConnect(ctx, "x", true); return r, err },
		"BtHeadsets":      func(c *Client) (any, error) { return c.BtHeadsets(ctx) },
		"Audio":           func(c *Client) (any, error) { return c.Audio(ctx) },
		"AudioMode":       func(c *Client) (any, error) { r, _, err := c.AudioMode(ctx, "card", "music"); return r, err },
		"AudioDefault":    func(c *Client) (any, error) { r, _, err := c.AudioDefault(ctx, "sink", "s"); return r, err },
		"AudioVolume":     func(c *Client) (any, error) { r, _, err := c.AudioVolume(ctx, "s", nil, nil); return r, err },
		"AudioTest": func(c *Client) (any, error) {
			r, _, err := c.AudioTest(ctx, apitype.AudioTestRequest{}, nil)
			return r, err
		},
		"Net":            func(c *Client) (any, error) { return c.Net(ctx) },
		"NetApply":       func(c *Client) (any, error) { r, _, err := c.NetApply(ctx); return r, err },
		"NetRenew":       func(c *Client) (any, error) { r, _, err := c.NetRenew(ctx, "eth0"); return r, err },
		"NetUplinkAdd":   func(c *Client) (any, error) { r, _, err := c.NetUplinkAdd(ctx, network.Uplink{}); return r, err },
		"NetUplinkDel":   func(c *Client) (any, error) { r, _, err := c.NetUplinkDel(ctx, "eth0.45"); return r, err },
		"WiFiStatus":     func(c *Client) (any, error) { return c.WiFiStatus(ctx) },
		"WiFiScan":       func(c *Client) (any, error) { r, _, err := c.WiFiScan(ctx, nil); return r, err },
		"WiFiConnect":    func(c *Client) (any, error) { r, _, err := c.WiFiConnect(ctx, wifi.Network{}); return r, err },
		"WiFiForget":     func(c *Client) (any, error) { r, _, err := c.WiFiForget(ctx, "home"); return r, err },
		"WiFiSetup":      func(c *Client) (any, error) { return c.WiFiSetup(ctx) },
		"WiFiSetupStart": func(c *Client) (any, error) { r, _, err := c.WiFiSetupStart(ctx); return r, err },
		"WiFiSetupStop":  func(c *Client) (any, error) { r, _, err := c.WiFiSetupStop(ctx); return r, err },
		"FW":             func(c *Client) (any, error) { return c.FW(ctx) },
		"FWAdd":          func(c *Client) (any, error) { r, _, err := c.FWAdd(ctx, apitype.FWAddRequest{}, nil); return r, err },
		"FWStage":        func(c *Client) (any, error) { r, _, err := c.FWStage(ctx, "ab", "", nil); return r, err },
		"FWRollback":     func(c *Client) (any, error) { r, _, err := c.FWRollback(ctx, "", nil); return r, err },
		"FWEject":        func(c *Client) (any, error) { r, _, err := c.FWEject(ctx, ""); return r, err },
	}
	// Two calls decode a part of their answer, as the CLI prints it: the
	// Wi-Fi station without the setup hotspot (`wifi setup` reads that),
	// the paired device without the headset saved for it (said in the
	// operation's progress).
	subset := map[string]reflect.Type{
		"WiFiStatus": reflect.TypeOf(apitype.WiFiStatus{}),
		"BtPair":     reflect.TypeOf(apitype.BtPairResult{}),
	}
	if n := reflect.TypeOf(&Client{}).NumMethod(); n != len(calls)+len([]string{"Socket", "Events", "EventsSince"}) {
		t.Errorf("the client has %d methods, the test knows %d: add the new call here", n, len(calls)+3)
	}
	for name, call := range calls {
		capture := &CaptureTransport{}
		got, err := call(NewTransport(capture, "test", "cli"))
		if !errors.Is(err, ErrCaptured) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		req, _ := http.NewRequest(capture.Method, "http://boxagent"+capture.Path, nil)
		_, pattern := mux.Handler(req)
		row, ok := rows[pattern]
		if !ok {
			t.Errorf("%s calls %s %s: no row of localapi.Routes", name, capture.Method, capture.Path)
			continue
		}
		if got == nil {
			continue
		}
		want := reflect.TypeOf(row.Result)
		if s, ok := subset[name]; ok && s == want {
			continue
		}
		if reflect.TypeOf(got) != want {
			t.Errorf("%s decodes %T, but %s answers %v", name, got, pattern, want)
		}
	}
}
