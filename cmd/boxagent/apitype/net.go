package apitype

import "github.com/boxagent/boxagent/wifi"

// NetRenewRequest is the body of POST /api/v1/net/renew.
type NetRenewRequest struct {
	Link string `json:"link"`
}

// NetEditResult answers POST /api/v1/net/uplinks and DELETE
// /api/v1/net/uplinks/{name}: the file edited and its reload.
type NetEditResult struct {
	Config string       `json:"config"`
	Reload ReloadResult `json:"reload"`
}

// NetRenewResult answers POST /api/v1/net/renew.
type NetRenewResult struct {
	Link  string `json:"link"`
	State string `json:"state"` // "renewing"
}

// WiFiForgetRequest is the body of POST /api/v1/wifi/forget.
type WiFiForgetRequest struct {
	SSID string `json:"ssid"`
}

// WiFiStatus answers GET /api/v1/wifi: the station and the setup hotspot.
type WiFiStatus struct {
	wifi.Status
	Setup wifi.SetupStatus `json:"setup"`
}
