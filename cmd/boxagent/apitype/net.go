package apitype

import "github.com/boxagent/boxagent/network"

// NetRenewRequest is the body of POST /api/v1/net/renew.
type NetRenewRequest struct {
	Link string `json:"link"`
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
	network.WiFiStatus
	Setup network.WiFiSetupStatus `json:"setup"`
}
