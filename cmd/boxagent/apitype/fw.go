package apitype

import (
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/firmware"
)

// FWStatus answers GET /api/v1/fw.
type FWStatus struct {
	Board     string              `json:"board"`
	Recovery  board.Firmware      `json:"recovery"`
	Sticks    []firmware.Stick    `json:"sticks"`
	Artifacts []firmware.Artifact `json:"artifacts"`
	// Staged is the artifact staged last, if any.
	Staged *firmware.Artifact   `json:"staged,omitempty"`
	Mounts map[string][]FWMount `json:"mounts,omitempty"` // by stick name
}

// FWAddRequest is the body of POST /api/v1/fw/add: a file on the box or
// an http(s) URL on the LAN, and the SHA-256 the board's method may need.
type FWAddRequest struct {
	Path   string `json:"path,omitempty"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// FWStageRequest is the body of POST /api/v1/fw/stage (and, without the
// artifact, of rollback and eject).
type FWStageRequest struct {
	Artifact string `json:"artifact,omitempty"`
	Device   string `json:"device,omitempty"` // sda1, or sda
}

// FWMount is where a stick's partition is mounted now (by the agent
// during a staging, or by someone else) and the space free there, for the
// Firmware page and `GET /api/v1/fw`.
type FWMount struct {
	Device   string `json:"device"` // sda1
	Dir      string `json:"dir"`
	ReadOnly bool   `json:"read_only"`
	Free     *int64 `json:"free,omitempty"` // bytes; absent when statfs fails
}
