package apitype

import (
	"time"

	"github.com/boxagent/boxagent/bluetooth"
)

// BtAddressRequest is the body of pair, connect, disconnect and remove.
type BtAddressRequest struct {
	Address string `json:"address"`
}

// BtScanRequest is the body of POST /api/v1/bt/scan.
type BtScanRequest struct {
	// Timeout in seconds; default 10.
	Timeout float64 `json:"timeout,omitempty"`
	// Until ends the scan once this address or name is seen.
	Until string `json:"until,omitempty"`
}

// BtPairableRequest is the body of POST /api/v1/bt/pairable.
type BtPairableRequest struct {
	On bool `json:"on"`
	// Timeout in seconds; default the config's pairing_window.
	Timeout float64 `json:"timeout,omitempty"`
}

// BtPowerRequest is the body of POST /api/v1/bt/power.
type BtPowerRequest struct {
	// Adapter is "hci0"…; empty means the configured one.
	Adapter string `json:"adapter,omitempty"`
	On      bool   `json:"on"`
}

// BtAutoConnectRequest is the body of POST /api/v1/bt/autoconnect.
type BtAutoConnectRequest struct {
	Address string `json:"address"`
	On      bool   `json:"on"`
}

// BtAutoConnectResult answers POST /api/v1/bt/autoconnect.
type BtAutoConnectResult struct {
	Address     string       `json:"address"`
	AutoConnect bool         `json:"auto_connect"`
	Config      string       `json:"config"`
	Reload      ReloadResult `json:"reload"`
}

// BtPairableResult answers POST /api/v1/bt/pairable.
type BtPairableResult struct {
	Adapter bluetooth.Adapter `json:"adapter"`
	Until   *time.Time        `json:"until,omitempty"`
}

// BtPairResult answers POST /api/v1/bt/pair: the device, and the
// [[bluetooth.headset]] saved for it when it was new to the config.
type BtPairResult struct {
	bluetooth.Device
	Saved *bluetooth.Headset `json:"saved,omitempty"`
}

// BtRemoveResult answers POST /api/v1/bt/remove. Removed is "true", a
// string, as it always was.
type BtRemoveResult struct {
	Address string `json:"address"`
	Removed string `json:"removed"`
}
