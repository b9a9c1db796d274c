package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// MaxWindow bounds a group command's window.
const MaxWindow = 24 * time.Hour

// Refusal codes, journalled and answered.
const (
	CodeMalformed    = "fleet.malformed"
	CodeBadSignature = "fleet.bad_signature"
	CodeWrongTarget  = "fleet.wrong_target"
	CodeExpired      = "fleet.expired"
	CodeNotAllowed   = "fleet.route_not_allowed"
)

// commandKind is the kind of a refused command's journal record.
const commandKind = "fleet.command"

// command handles one command message: checked, run once by id, answered.
func (l *Link) command(msg []byte) {
	ctx := context.Background()
	c, err := Open(msg, l.keys)
	if err != nil {
		code := CodeMalformed
		if errors.Is(err, ErrBadSignature) {
			code = CodeBadSignature
		}
		// No ref: an unsigned id must not stand in for a real command's.
		l.refuse(ctx, Command{ID: unsignedID(msg)}, "", code, err.Error())
		return
	}
	if !l.o.Now().Before(c.Expires) {
		l.refuse(ctx, c, c.ID, CodeExpired, fmt.Sprintf("the command expired at %s", c.Expires.UTC().Format(time.RFC3339)))
		return
	}
	if !l.targets(c.Target) {
		l.refuse(ctx, c, c.ID, CodeWrongTarget, fmt.Sprintf("the command is for %q, not this box (%s)", c.Target, l.o.Identity.ID))
		return
	}
	if !l.allowed(c.Method, c.Path) {
		l.refuse(ctx, c, c.ID, CodeNotAllowed, fmt.Sprintf("%s %s is not among this box's fleet routes", c.Method, c.Path))
		return
	}
	// One at a time per id: a redelivery while the first runs waits for
	// it and is then answered from the journal.
	if !l.claim(c.ID) {
		return
	}
	defer l.release(c.ID)
	if rep, ok := l.answered(c); ok {
		l.reply(ctx, rep)
		return
	}
	if w := time.Duration(c.WindowMS) * time.Millisecond; w > 0 {
		d := l.o.Delay(min(w, MaxWindow))
		select {
		case <-time.After(d):
		case <-l.done():
			return
		}
	}
	code, body := l.call(ctx, c.Method, c.Path, c.Body, c.ID)
	l.reply(ctx, Reply{ID: c.ID, Device: l.o.Identity.ID, Status: code, Body: body})
}

// done is closed when the link stops; commands waiting out their window
// give up then (the operator sends them again).
func (l *Link) done() <-chan struct{} { return l.stop }

func (l *Link) claim(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[id] {
		return false
	}
	l.inflight[id] = true
	return true
}

func (l *Link) release(id string) {
	l.mu.Lock()
	delete(l.inflight, id)
	l.mu.Unlock()
}

func (l *Link) targets(t string) bool {
	if t == l.o.Identity.ID {
		return true
	}
	g, ok := strings.CutPrefix(t, GroupLevel+"/")
	if !ok {
		return false
	}
	for _, mine := range l.o.Config.Groups {
		if g == mine {
			return true
		}
	}
	return false
}

// allowed matches a call against the API's route table with net/http's
// own pattern rules, as the API will, and says whether the row it finds
// is one the config allows.
func (l *Link) allowed(method, path string) bool {
	req, err := http.NewRequest(method, "http://boxagent"+path, nil)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") || req.URL.Path != cleanPath(req.URL.Path) {
		return false
	}
	_, pattern := l.routes.Handler(req)
	return l.allow[pattern]
}

// allowedRoutes is the API's table (localapi.Routes when table is nil)
// as a mux, and the rows that the config's routes name, by pattern. A
// configured route must name a row served in process (wildcards may be
// named otherwise: "{addr}" for "{address}"): one that names none would
// allow nothing, and is refused.
func allowedRoutes(table []localapi.Route, configured []string) (*http.ServeMux, map[string]bool, error) {
	if table == nil {
		table = localapi.Routes
	}
	mux, rows := http.NewServeMux(), map[string]string{}
	for _, r := range table {
		if r.Session {
			continue // the page's login: not served in process
		}
		mux.HandleFunc(r.Pattern(), func(http.ResponseWriter, *http.Request) {})
		rows[blankWildcards(r.Pattern())] = r.Pattern()
	}
	allow := map[string]bool{}
	for i, c := range configured {
		p, ok := rows[blankWildcards(c)]
		if !ok {
			return nil, nil, fmt.Errorf("[fleet] routes[%d]: %q is no call of the local API", i, c)
		}
		allow[p] = true
	}
	return mux, allow, nil
}

// blankWildcards writes each wildcard of a pattern as {}: from a '{' to
// the next '}', whatever is between ("{address}", "{addr}", "{a{b}").
func blankWildcards(pattern string) string {
	var b strings.Builder
	for {
		start := strings.IndexByte(pattern, '{')
		if start < 0 {
			break
		}
		n := strings.IndexByte(pattern[start:], '}')
		if n < 0 {
			break
		}
		b.WriteString(pattern[:start] + "{}")
		pattern = pattern[start+n+1:]
	}
	b.WriteString(pattern)
	return b.String()
}

// cleanPath refuses dot segments, which the mux would redirect.
func cleanPath(p string) string {
	if strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "//") {
		return ""
	}
	return p
}

// answered finds a command that already ran: its journal record is
// answered again, as the API would have answered it.
func (l *Link) answered(c Command) (Reply, bool) {
	ops, err := l.o.Journal.List(journal.Query{Ref: c.ID, Limit: 1})
	if err != nil || len(ops) == 0 {
		return Reply{}, false
	}
	op := ops[0]
	status, body := http.StatusOK, []byte(nil)
	switch {
	case op.State == journal.StateRunning:
		status = http.StatusAccepted
		body, _ = json.Marshal(apitype.Accepted{ID: op.ID, Location: fmt.Sprintf("/api/v1/operations/%d", op.ID)})
	case op.Error != nil:
		status = statusOf(op.Error.Code)
		body, _ = json.Marshal(op)
	default:
		body, _ = json.Marshal(op)
	}
	return Reply{ID: c.ID, Device: l.o.Identity.ID, Status: status, Body: body, Again: true}, true
}

func statusOf(code string) int {
	switch {
	case strings.HasPrefix(code, "fleet."):
		return http.StatusForbidden
	case strings.HasSuffix(code, ".invalid"):
		return http.StatusBadRequest
	case strings.HasSuffix(code, ".not_found"):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// refuse journals a refused command and answers it with the error.
func (l *Link) refuse(ctx context.Context, c Command, ref, code, msg string) {
	l.log.Warn("command refused", "id", c.ID, "code", code, "err", msg)
	failure := &journal.Failure{Code: code, Message: msg}
	if !l.refusals.take(l.o.Now()) {
		// A flood of refused messages (a broker gone bad) must not push
		// the box's own records out of the bounded journal: beyond the
		// bucket they are logged and answered only.
		body, _ := json.Marshal(map[string]any{"error": failure})
		l.reply(ctx, Reply{ID: c.ID, Device: l.o.Identity.ID, Status: http.StatusForbidden, Body: body})
		return
	}
	req, _ := json.Marshal(map[string]any{"id": c.ID, "target": c.Target, "method": c.Method, "path": c.Path})
	var snap journal.Snapshot
	if l.o.Snapshot != nil {
		snap = l.o.Snapshot()
	}
	op, err := l.o.Journal.Begin(journal.Operation{
		Kind: commandKind, Origin: journal.OriginFleet, Ref: ref,
		Summary: "refused a fleet command: " + code, Request: req, Snapshot: snap,
	})
	if err == nil {
		if op, err = l.o.Journal.Finish(op.ID, nil, failure, journal.StateFailed); err == nil {
			wake(l.wakeRecords)
		}
	}
	if err != nil {
		l.log.Error("cannot journal a refused command", "id", c.ID, "err", err)
	}
	body, _ := json.Marshal(map[string]any{"error": failure, "operation": op.ID})
	l.reply(ctx, Reply{ID: c.ID, Device: l.o.Identity.ID, Status: http.StatusForbidden, Body: body})
}

func (l *Link) reply(ctx context.Context, r Reply) {
	b, _ := json.Marshal(r)
	if err := l.publish(ctx, l.topics.Reply(), false, b); err != nil {
		// The operator sends again until answered; the journal answers.
		l.log.Debug("cannot send a reply", "id", r.ID, "err", err)
	}
}

// unsignedID is the id a refused message claims, for the operator's
// sake only: it is never trusted.
func unsignedID(msg []byte) string {
	var env Envelope
	var c Command
	if json.Unmarshal(msg, &env) == nil && json.Unmarshal(env.Command, &c) == nil && len(c.ID) <= 128 {
		return c.ID
	}
	return ""
}

// bucket lets through refusalBurst journal records at once and one per
// refusalEvery after.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

const (
	refusalBurst = 20
	refusalEvery = 6 * time.Second // 10 a minute
)

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = refusalBurst
	} else {
		b.tokens = min(refusalBurst, b.tokens+float64(now.Sub(b.last))/float64(refusalEvery))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
