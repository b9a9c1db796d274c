// Package apitype holds the wire types of the local API: the requests,
// results, events and errors it speaks. The server (localapi and the
// daemon's handlers), the typed client, the page's tests and the fleet
// link all use these, so none can drift from another (tailscale's
// client/tailscale/apitype). The JSON is locked by TestWireGolden.
//
// Nested domain values (a bluetooth.Device, a firmware.Artifact, an
// audio.State, a network.View) are still the domain packages' own types.
package apitype

import (
	"encoding/json"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// Status answers GET /api/v1/status.
type Status struct {
	Version       string      `json:"version"`
	Started       time.Time   `json:"started"`
	UptimeSeconds float64     `json:"uptime_seconds"`
	Board         BoardInfo   `json:"board"`
	Config        ConfigInfo  `json:"config"`
	Listeners     Listeners   `json:"listeners"`
	Subsystems    []Subsystem `json:"subsystems"`
}

// BoardInfo names the board profile in effect and why it was chosen.
type BoardInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// ConfigInfo says which configuration is in effect.
type ConfigInfo struct {
	Path     string    `json:"path"`
	Revision string    `json:"revision"`
	Loaded   time.Time `json:"loaded"`
	// Default is true when no config file exists and defaults are in effect.
	Default bool `json:"default,omitempty"`
}

// Listeners are the addresses the API is served on.
type Listeners struct {
	Socket string `json:"socket"`
	HTTP   string `json:"http,omitempty"`
	// HTTPS says the page is served over TLS (its listener is reachable
	// from the network); CertSHA256 is its certificate's fingerprint.
	HTTPS      bool   `json:"https,omitempty"`
	CertSHA256 string `json:"cert_sha256,omitempty"`
}

// Subsystem states.
const (
	StateOK       = "ok"
	StateDegraded = "degraded"
	StateFailed   = "failed"
	StateAbsent   = "absent"
)

// Subsystem is the health of one part of the agent.
type Subsystem struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Check results of doctor.
const (
	CheckOK   = "OK"
	CheckWarn = "WARN"
	CheckFail = "FAIL"
	CheckSkip = "SKIP"
)

// Check is one doctor finding, with a one-line fix when it is not OK.
type Check struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Doctor answers GET /api/v1/doctor.
type Doctor struct {
	Checks []Check `json:"checks"`
}

// Accepted answers a mutating call: the operation it started. Quick
// operations answer 200 with their final record; long ones 202 while they
// run, and their progress arrives as events.
type Accepted struct {
	ID       uint64 `json:"id"`
	Location string `json:"location"`
}

// ReloadResult answers POST /api/v1/config/reload.
type ReloadResult struct {
	Previous string   `json:"previous_revision"`
	Revision string   `json:"revision"`
	Changed  bool     `json:"changed"`
	Notes    []string `json:"notes,omitempty"`
}

// Error is what every failing API call answers, as
// {"error":{"code":…,"message":…,"hint":…}}. Code is stable and meant for
// programs; Message and Hint are for people.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Event is one state change or progress report, delivered to every
// subscriber of GET /api/v1/events as a server-sent event.
type Event struct {
	ID   uint64          `json:"id"`
	Time time.Time       `json:"time"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// OperationEvent is the data of "operation" events.
type OperationEvent struct {
	ID       uint64            `json:"id"`
	Kind     string            `json:"kind"`
	State    journal.State     `json:"state"`
	Progress *journal.Progress `json:"progress,omitempty"`
	Error    *journal.Failure  `json:"error,omitempty"`
}

// CancelAnswer answers POST /api/v1/operations/{id}/cancel.
type CancelAnswer struct {
	ID    uint64 `json:"id"`
	State string `json:"state"` // "cancelling": the operation ends soon, as cancelled
}

// SessionInfo answers GET /api/v1/session, a login and a logout (TCP
// only: the page's session).
type SessionInfo struct {
	Required      bool   `json:"required"`
	Authenticated bool   `json:"authenticated"`
	CSRF          string `json:"csrf,omitempty"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Password string `json:"password"`
}

// The headers and the cookie of the API.

// CSRFHeader is what the page sends with every change. It is no longer
// what authorises one: every call over TCP needs a session, and every
// change its CSRF token (CSRFTokenHeader).
const CSRFHeader = "X-Boxagent-Request"

// OriginHeader lets a client over the unix socket say who it is (cli or
// provision); requests over TCP are always "web".
const OriginHeader = "X-Boxagent-Origin"

// RefHeader carries, in a request to InProcess's handler, the front end's
// own id of the request, journalled as the operation's Ref.
const RefHeader = "X-Boxagent-Ref"

// SessionCookie names the page's session cookie.
const SessionCookie = "boxagent_session"

// CSRFTokenHeader carries the session's CSRF token on every mutating call
// over TCP.
const CSRFTokenHeader = "X-Boxagent-CSRF"
