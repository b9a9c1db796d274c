package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

func TestFleetCheck(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	on := func(notAfter *time.Time) apitype.FleetInfo {
		return apitype.FleetInfo{Configured: true, FleetLink: apitype.FleetLink{Connected: true, Broker: "mqtts://b:8883", ID: "box-1", CertNotAfter: notAfter}}
	}
	tests := []struct {
		name   string
		in     apitype.FleetInfo
		result string
		detail string
	}{
		{"off", apitype.FleetInfo{}, apitype.CheckSkip, "no [fleet]"},
		{"cannot start", apitype.FleetInfo{Configured: true, Error: "cannot read the fleet certificate"}, apitype.CheckFail, "cannot read"},
		{"connected, a year left", on(at(365 * 24 * time.Hour)), apitype.CheckOK, "certificate until 2027-12-05"},
		{"31 days left", on(at(31 * 24 * time.Hour)), apitype.CheckOK, "connected to mqtts://b:8883 as box-1"},
		{"29 days left", on(at(29 * 24 * time.Hour)), apitype.CheckWarn, "certificate until 2027-01-03"},
		{"expired", on(at(-time.Hour)), apitype.CheckFail, "certificate until 2026-12-05"},
		{"not connected", apitype.FleetInfo{Configured: true, FleetLink: apitype.FleetLink{ID: "box-1"}}, apitype.CheckWarn, "not connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fleetCheck(tt.in, now)
			if c.Result != tt.result || !strings.Contains(c.Detail, tt.detail) || (c.Result != apitype.CheckOK && c.Result != apitype.CheckSkip && c.Fix == "") {
				t.Errorf("fleetCheck = %+v, want %s with %q and a fix", c, tt.result, tt.detail)
			}
		})
	}
}
