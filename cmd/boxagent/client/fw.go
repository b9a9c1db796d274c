package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/firmware"
)

// FW returns the firmware overview.
func (c *Client) FW(ctx context.Context) (apitype.FWStatus, error) {
	var s apitype.FWStatus
	return s, c.call(ctx, "GET", "/api/v1/fw", &s)
}

// FWAdd imports a package into the store and returns its artifact once
// it is verified. progress, if not nil, follows the operation.
func (c *Client) FWAdd(ctx context.Context, req apitype.FWAddRequest, progress func(journal.Progress)) (firmware.Artifact, journal.Operation, error) {
	var a firmware.Artifact
	op, err := c.runOperation(ctx, "/api/v1/fw/add", req, progress)
	if err == nil {
		err = decodeResult(op, &a)
	}
	return a, op, err
}

// FWStage writes an artifact onto a stick (device "" picks the only
// stick and its partition) and verifies it from the stick.
func (c *Client) FWStage(ctx context.Context, sha, device string, progress func(journal.Progress)) (firmware.StageResult, journal.Operation, error) {
	var r firmware.StageResult
	op, err := c.runOperation(ctx, "/api/v1/fw/stage", map[string]string{"artifact": sha, "device": device}, progress)
	if err == nil {
		err = decodeResult(op, &r)
	}
	return r, op, err
}

// FWRollback stages the artifact staged before the current one.
func (c *Client) FWRollback(ctx context.Context, device string, progress func(journal.Progress)) (firmware.StageResult, journal.Operation, error) {
	var r firmware.StageResult
	op, err := c.runOperation(ctx, "/api/v1/fw/rollback", map[string]string{"device": device}, progress)
	if err == nil {
		err = decodeResult(op, &r)
	}
	return r, op, err
}

// FWEject syncs and unmounts a stick.
func (c *Client) FWEject(ctx context.Context, device string) (firmware.EjectResult, journal.Operation, error) {
	var r firmware.EjectResult
	var op journal.Operation
	data, _ := json.Marshal(map[string]string{"device": device})
	resp, err := c.do(ctx, "POST", "/api/v1/fw/eject", bytes.NewReader(data))
	if err != nil {
		return r, op, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, op, fmt.Errorf("cannot read the answer to eject: %w", err)
	}
	if resp.StatusCode >= 400 {
		return r, op, decodeError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &op); err != nil {
		return r, op, fmt.Errorf("cannot decode the answer to eject: %w", err)
	}
	return r, op, decodeResult(op, &r)
}

func decodeResult(op journal.Operation, v any) error {
	if len(op.Result) == 0 {
		return fmt.Errorf("operation %d ended without a result", op.ID)
	}
	if err := json.Unmarshal(op.Result, v); err != nil {
		return fmt.Errorf("cannot decode the result of operation %d: %w", op.ID, err)
	}
	return nil
}
