package localapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// errCancelRequested is the cause of an operation cancelled by
// POST /api/v1/operations/{id}/cancel. It is a context.Canceled: net/http
// hands the cause, not ctx.Err(), to a body read it interrupts.
var errCancelRequested = fmt.Errorf("cancelled on request: %w", context.Canceled)

// track gives a starting operation a context of its own, so that it can be
// cancelled alone.
func (o *operations) track(id uint64) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(o.ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running == nil {
		o.running = map[uint64]context.CancelCauseFunc{}
	}
	o.running[id] = cancel
	return ctx, cancel
}

func (o *operations) untrack(id uint64, cancel context.CancelCauseFunc) {
	o.mu.Lock()
	delete(o.running, id)
	o.mu.Unlock()
	cancel(nil)
}

// cancelOne cancels a running operation; it reports whether one was.
func (o *operations) cancelOne(id uint64) bool {
	o.mu.Lock()
	cancel, ok := o.running[id]
	o.mu.Unlock()
	if ok {
		cancel(errCancelRequested)
	}
	return ok
}

// cancelledFailure says why an operation that ended on context.Canceled
// was cancelled.
func cancelledFailure(ctx context.Context, f *journal.Failure) *journal.Failure {
	msg := "cancelled: the agent is stopping"
	if errors.Is(context.Cause(ctx), errCancelRequested) {
		msg = "cancelled on request"
	}
	if f == nil || f.Code == "internal" {
		return &journal.Failure{Code: "operation.cancelled", Message: msg}
	}
	return f
}

// cancelOperation cancels a running operation: its context ends, and it
// ends as cancelled once its work has noticed (at once for a download).
func (s *Server) cancelOperation(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return Errorf(http.StatusBadRequest, "api.invalid", fmt.Sprintf("operation id %q is not a number", r.PathValue("id")), "")
	}
	op, err := s.journal.Get(id)
	if err != nil {
		return Errorf(http.StatusNotFound, "operation.not_found", fmt.Sprintf("no operation %d", id), "boxagent history lists the operations")
	}
	// The journal first: an operation it has ended may still be tracked
	// for a moment, and is not cancelled any more.
	if op.State == journal.StateRunning && s.ops.cancelOne(id) {
		writeJSON(w, http.StatusAccepted, apitype.CancelAnswer{ID: id, State: "cancelling"})
		return nil
	}
	return Errorf(http.StatusConflict, "operation.finished", fmt.Sprintf("operation %d is not running", id), "")
}
