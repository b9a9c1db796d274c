package client

import (
	"context"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/firmware"
)

// FW returns the firmware overview.
func (c *Client) FW(ctx context.Context) (apitype.FWStatus, error) {
	return get[apitype.FWStatus](ctx, c, "/api/v1/fw")
}

// FWAdd imports a package into the store and returns its artifact once
// it is verified. progress, if not nil, follows the operation.
func (c *Client) FWAdd(ctx context.Context, req apitype.FWAddRequest, progress func(journal.Progress)) (firmware.Artifact, journal.Operation, error) {
	return result[firmware.Artifact](c.runOperation(ctx, "/api/v1/fw/add", req, progress))
}

// FWStage writes an artifact onto a stick (device "" picks the only
// stick and its partition) and verifies it from the stick.
func (c *Client) FWStage(ctx context.Context, sha, device string, progress func(journal.Progress)) (firmware.StageResult, journal.Operation, error) {
	return result[firmware.StageResult](c.runOperation(ctx, "/api/v1/fw/stage", apitype.FWStageRequest{Artifact: sha, Device: device}, progress))
}

// FWRollback stages the artifact staged before the current one.
func (c *Client) FWRollback(ctx context.Context, device string, progress func(journal.Progress)) (firmware.StageResult, journal.Operation, error) {
	return result[firmware.StageResult](c.runOperation(ctx, "/api/v1/fw/rollback", apitype.FWStageRequest{Device: device}, progress))
}

// FWEject syncs and unmounts a stick.
func (c *Client) FWEject(ctx context.Context, device string) (firmware.EjectResult, journal.Operation, error) {
	return result[firmware.EjectResult](c.postOperation(ctx, "/api/v1/fw/eject", apitype.FWStageRequest{Device: device}))
}
