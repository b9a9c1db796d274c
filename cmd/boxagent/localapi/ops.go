package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// Spec describes a mutating call before it runs.
type Spec struct {
	Kind    string
	Summary string
	Request any
	// Long operations answer 202 at once and report progress as events;
	// short ones answer when done. A call's is its route's (Route.Long):
	// this is for the agent's own operations (Server.Run).
	Long bool
}

// ProgressFunc reports how far an operation is. total 0 means unknown.
type ProgressFunc func(message string, done, total int64)

// OpFunc does the work of an operation. Its context is cancelled when the
// daemon shuts down.
type OpFunc func(ctx context.Context, progress ProgressFunc) (result any, err error)

// operations runs mutating calls as journalled operations and tracks the
// running ones so shutdown can cancel and wait for them.
type operations struct {
	store    *journal.Store
	events   *Broker
	snapshot func() journal.Snapshot
	log      *slog.Logger
	failure  func(error) *apitype.Error

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[uint64]context.CancelCauseFunc // see cancel.go
}

// progressEvery bounds how often progress is written to the journal; every
// report still goes out as an event.
const progressEvery = time.Second

// start begins an operation and runs fn: in the background for a long one,
// before returning for a short one. It returns the operation's record as it
// stands when start returns.
func (o *operations) start(who caller, spec Spec, fn OpFunc) (journal.Operation, error) {
	if err := o.ctx.Err(); err != nil {
		return journal.Operation{}, Errorf(http.StatusServiceUnavailable, "agent.stopping", "cannot start an operation: the agent is stopping", "")
	}
	req, err := json.Marshal(spec.Request)
	if err != nil {
		return journal.Operation{}, fmt.Errorf("cannot encode the request: %w", err)
	}
	op, err := o.store.Begin(journal.Operation{
		Kind: spec.Kind, Origin: who.origin, Ref: who.ref, Summary: spec.Summary,
		Request: req, Snapshot: o.snapshot(),
	})
	if err != nil {
		return journal.Operation{}, fmt.Errorf("cannot journal the operation: %w", err)
	}
	o.log.Info("operation started", "id", op.ID, "kind", op.Kind, "origin", op.Origin)
	o.events.Publish("operation", apitype.OperationEvent{ID: op.ID, Kind: op.Kind, State: op.State})

	ctx, cancel := o.track(op.ID)
	o.wg.Add(1)
	done := make(chan journal.Operation, 1)
	go func() {
		defer o.wg.Done()
		defer o.untrack(op.ID, cancel)
		done <- o.run(ctx, op, fn)
	}()
	if spec.Long {
		return op, nil
	}
	return <-done, nil
}

func (o *operations) run(ctx context.Context, op journal.Operation, fn OpFunc) journal.Operation {
	var last time.Time
	progress := func(msg string, done, total int64) {
		p := journal.Progress{Time: time.Now().UTC(), Message: msg, Done: done, Total: total}
		o.events.Publish("operation", apitype.OperationEvent{ID: op.ID, Kind: op.Kind, State: journal.StateRunning, Progress: &p})
		if time.Since(last) < progressEvery && done != total {
			return
		}
		last = time.Now()
		if err := o.store.AddProgress(op.ID, p); err != nil {
			o.log.Warn("cannot journal progress", "id", op.ID, "err", err)
		}
	}
	result, err := fn(ctx, progress)
	var raw json.RawMessage
	if err == nil && result != nil {
		raw, err = json.Marshal(result)
	}
	var failure *journal.Failure
	var state journal.State
	if err != nil {
		e := o.failure(err)
		failure = &journal.Failure{Code: e.Code, Message: e.Message, Hint: e.Hint}
		if errors.Is(err, context.Canceled) {
			state = journal.StateCancelled
			failure = cancelledFailure(ctx, failure)
		}
	} else if errors.Is(context.Cause(ctx), errCancelRequested) {
		// Work that ends early and quietly when cancelled (a scan answers
		// with what it saw so far) was still cancelled on request: the
		// journal says so, and keeps the partial result.
		state = journal.StateCancelled
		failure = cancelledFailure(ctx, nil)
	}
	final, ferr := o.store.Finish(op.ID, raw, failure, state)
	if ferr != nil {
		o.log.Error("cannot journal the end of an operation", "id", op.ID, "err", ferr)
		final = op
	}
	o.log.Info("operation ended", "id", op.ID, "kind", op.Kind, "state", final.State)
	o.events.Publish("operation", apitype.OperationEvent{ID: op.ID, Kind: op.Kind, State: final.State, Error: failure})
	return final
}

// shutdown cancels running operations and waits for them until ctx ends.
func (o *operations) shutdown(ctx context.Context) error {
	o.cancel()
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("operations still running at shutdown: %w", ctx.Err())
	}
}
