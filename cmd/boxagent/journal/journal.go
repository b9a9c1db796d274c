// Package journal is boxagent's operations journal: every mutating call of
// the daemon is one Operation, with the settings in effect when it ran, its
// progress and its outcome. It is modelled on snapd's changes.
//
// The journal lives in one bbolt file (/var/lib/boxagent/journal.db on a
// box). bbolt fsyncs every committed transaction, so whatever Begin,
// AddProgress or Finish has returned survives a kill -9 or a power cut; an
// operation that was still running when the agent died is marked
// StateInterrupted the next time the journal is opened.
//
// The journal is bounded twice over:
//
//   - it keeps the newest Options.Keep operations (default 1000) and drops
//     the oldest when Begin would go beyond that, running or not;
//   - each operation keeps its first progress entry and its last
//     MaxProgress-1 entries; the ones in between are dropped and counted in
//     Operation.ProgressDropped, so a long copy that reports progress for
//     hours cannot grow a record without bound.
//
// Every committed write costs an fsync, which is slow on flash: callers
// should throttle AddProgress (a few entries a second at most) and publish
// fine-grained progress as events instead.
//
// Layout of the file (keys are big-endian uint64, so bbolt iterates them in
// order; values are JSON):
//
//	ops/<id>              Operation without its progress
//	progress/<id>/<seq>   Progress entries of one operation, seq from 1
//	running/<id>          empty: the operations not yet finished
//	meta/count            number of keys in ops
package journal

import (
	"encoding/json"
	"errors"
	"time"
)

// State is where an operation stands.
type State string

// The states of an operation. Only StateRunning is not final.
const (
	StateRunning     State = "running"
	StateDone        State = "done"
	StateFailed      State = "failed"
	StateCancelled   State = "cancelled"
	StateInterrupted State = "interrupted" // the agent stopped before the operation ended
)

// Final reports whether s is a state an operation ends in.
func (s State) Final() bool {
	switch s {
	case StateDone, StateFailed, StateCancelled, StateInterrupted:
		return true
	}
	return false
}

// Origin says which front end asked for an operation.
type Origin string

// The origins of an operation.
const (
	OriginCLI       Origin = "cli"
	OriginWeb       Origin = "web"
	OriginProvision Origin = "provision"
	OriginAuto      Origin = "auto"  // the agent itself: reconnects, re-applied uplinks …
	OriginFleet     Origin = "fleet" // a signed command over the fleet link (MQTT)
)

func (o Origin) valid() bool {
	switch o {
	case OriginCLI, OriginWeb, OriginProvision, OriginAuto, OriginFleet:
		return true
	}
	return false
}

// Snapshot is the settings in effect when an operation began. The caller
// replaces secrets by fingerprints before handing it over: the journal stores
// Config as given.
type Snapshot struct {
	Revision string          `json:"revision"`
	Board    string          `json:"board"`
	Config   json.RawMessage `json:"config"`
}

// Progress is one step of a running operation.
type Progress struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
	Done    int64     `json:"done,omitempty"`
	Total   int64     `json:"total,omitempty"`
}

// Failure is why an operation did not succeed, in the local API's words.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Operation is one mutating call and what became of it.
type Operation struct {
	ID      uint64 `json:"id"`
	Kind    string `json:"kind"` // "config.reload", "bt.pair" …
	Origin  Origin `json:"origin"`
	Summary string `json:"summary,omitempty"`
	// Ref is the front end's own id of the request, when it has one: a
	// fleet command's id, so that a command delivered twice runs once.
	Ref      string          `json:"ref,omitempty"`
	Request  json.RawMessage `json:"request,omitempty"`
	Snapshot Snapshot        `json:"snapshot"`
	State    State           `json:"state"`
	Started  time.Time       `json:"started"`
	Ended    *time.Time      `json:"ended,omitempty"`
	// Progress is oldest first: the first entry ever added, then the
	// newest ones (see MaxProgress). List leaves it out unless asked.
	Progress []Progress `json:"progress,omitempty"`
	// ProgressDropped counts the entries dropped between the first and
	// the newest ones. Like Progress, it is only filled when Progress is.
	ProgressDropped int64           `json:"progress_dropped,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           *Failure        `json:"error,omitempty"`
}

// MaxProgress is how many progress entries an operation keeps: the first one
// (what the operation set out to do) and the newest MaxProgress-1.
const MaxProgress = 201

// DefaultKeep is how many operations the journal keeps when Options.Keep is
// not set.
const DefaultKeep = 1000

// DefaultLimit is how many operations List returns when Query.Limit is not
// set.
const DefaultLimit = 50

// Options tune a Store. The zero value is the box's default.
type Options struct {
	// Keep is how many operations to keep, newest first; <= 0 means
	// DefaultKeep.
	Keep int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NoFollow refuses a journal file that is a symlink (ELOOP) instead of
	// following it: provisioning opens the journal of an image, where a
	// link could point at the host.
	NoFollow bool
}

// Query selects operations for List. Filters that are empty match
// everything; the others match by equality.
type Query struct {
	// Limit is the most operations to return; <= 0 means DefaultLimit.
	Limit int
	// Before, if not 0, returns only operations with an id below it: pass
	// the last id of a page to get the next one.
	Before uint64
	Kind   string
	Origin string
	State  State
	// Ref, if set, matches only operations with this Ref.
	Ref string
	// WithProgress fills in Progress and ProgressDropped.
	WithProgress bool
}

// Errors a caller decides on; test with errors.Is.
var (
	// ErrNotFound: no operation has this id, or it was pruned.
	ErrNotFound = errors.New("no such operation")
	// ErrFinished: the operation has already ended.
	ErrFinished = errors.New("operation already ended")
	// ErrInvalid: the caller passed an operation or state the journal
	// refuses; nothing was written.
	ErrInvalid = errors.New("invalid")
	// ErrLocked: another process holds the journal open.
	ErrLocked = errors.New("journal in use by another process")
)

// interruptedFailure is what Open records on an operation the agent died
// during.
var interruptedFailure = Failure{
	Code:    "journal.interrupted",
	Message: "the agent stopped before the operation finished",
}
