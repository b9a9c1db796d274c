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

// WiFiSetupNetwork is a network of the setup page's list (GET
// /setup/networks on the setup hotspot's listener).
type WiFiSetupNetwork struct {
	SSID     string `json:"ssid"`
	Signal   int    `json:"signal_dbm"`
	Security string `json:"security"`
	Band     string `json:"band,omitempty"`
}

// WiFiSetupConnectRequest is what the setup page posts (POST
// /setup/connect on the setup hotspot's listener).
type WiFiSetupConnectRequest struct {
	SSID     string `json:"ssid"`
	Password string `json:"password"`
	Hidden   bool   `json:"hidden,omitempty"`
}
