package apitype

import "time"

// FleetInfo answers GET /api/v1/fleet: the page's Overview line.
type FleetInfo struct {
	Configured bool   `json:"configured"`
	Error      string `json:"error,omitempty"`
	FleetLink
}

// FleetLink is the fleet link's state for status and the page.
type FleetLink struct {
	Connected    bool       `json:"connected"`
	Broker       string     `json:"broker,omitempty"`
	ID           string     `json:"id"`
	Acked        uint64     `json:"acked_record"`
	CertNotAfter *time.Time `json:"cert_not_after,omitempty"`
}
