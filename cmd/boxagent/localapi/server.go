// Package localapi is boxagent's one API: the handler table, who may call
// what, server-sent events and journalled operations. The CLI (over the
// unix socket) and the control page (over TCP) are both thin clients of it,
// so they see the same behaviour and the same errors.
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// Backend is what the API serves; the daemon implements it. Values are
// returned ready to be encoded as JSON.
type Backend interface {
	Status(ctx context.Context) apitype.Status
	Doctor(ctx context.Context) apitype.Doctor
	Board(ctx context.Context) board.Detection
	Boards(ctx context.Context) ([]board.Profile, error)
	// ReloadConfig re-reads and applies the config file: the demo mutation.
	ReloadConfig(ctx context.Context) (apitype.ReloadResult, error)
	// Snapshot is the settings in effect, recorded with every operation.
	Snapshot() journal.Snapshot
}

// StatusWriter is a Backend that writes GET /api/v1/status's answer
// itself: the bytes writeJSON would write for Status's value, made when
// the state it shows changed rather than at every call (status is the
// API's hot path: the page, the CLI and the fleet link ask it).
type StatusWriter interface {
	WriteStatus(w io.Writer) error
}

// Options configure a Server.
type Options struct {
	Backend Backend
	Journal *journal.Store
	Events  *Broker
	Logger  *slog.Logger
	// Mappers turn domain errors into API errors.
	Mappers []ErrorMapper
	// Sessions authorise requests that come over TCP, every one of them.
	// Requests over the unix socket are authorised by the socket's file
	// permissions and the peer's credentials (the daemon's listener).
	Sessions *Sessions
	// Routes is the table served; nil is Routes (tests add rows of their
	// own).
	Routes []Route
}

// Server serves the API. One Server handles both listeners; which one a
// request came through is told by Handler's trusted argument.
type Server struct {
	backend  Backend
	journal  *journal.Store
	events   *Broker
	log      *slog.Logger
	mappers  []ErrorMapper
	sessions *Sessions
	ops      *operations
	routes   []Route
	handlers map[string]HandlerFunc // by Route.Pattern
}

// HandlerFunc handles one API call; a returned error is answered in the
// API's error shape.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle gives the row of the route table that pattern names
// ("POST /api/v1/bt/scan") its handler; the daemon's domains give theirs
// before Handler is called. A pattern that is not a row, or one given
// twice, is a mistake of the program: it panics.
func (s *Server) Handle(pattern string, h HandlerFunc) {
	if !slices.ContainsFunc(s.routes, func(r Route) bool { return r.Pattern() == pattern }) {
		panic("localapi: " + pattern + " is not in the route table (localapi.Routes)")
	}
	if s.handlers[pattern] != nil {
		panic("localapi: " + pattern + " has a handler already")
	}
	s.handlers[pattern] = h
}

// Unbound lists the rows that have no handler yet.
func (s *Server) Unbound() []Route {
	var out []Route
	for _, r := range s.routes {
		if s.handlers[r.Pattern()] == nil {
			out = append(out, r)
		}
	}
	return out
}

// Publish sends an event to every subscriber of /api/v1/events.
func (s *Server) Publish(typ string, data any) { s.events.Publish(typ, data) }

// New builds a Server.
func New(o Options) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		backend: o.Backend, journal: o.Journal, events: o.Events, log: o.Logger,
		mappers: o.Mappers, sessions: o.Sessions,
	}
	if s.sessions == nil {
		s.sessions = &Sessions{}
	}
	s.ops = &operations{
		store: o.Journal, events: o.Events, snapshot: o.Backend.Snapshot,
		log: o.Logger, failure: s.apiError, ctx: ctx, cancel: cancel,
	}
	s.routes, s.handlers = o.Routes, map[string]HandlerFunc{}
	if s.routes == nil {
		s.routes = Routes
	}
	for pattern, h := range map[string]HandlerFunc{
		"GET /api/v1/status":                  s.getStatus,
		"GET /api/v1/events":                  s.getEvents,
		"GET /api/v1/operations":              s.listOperations,
		"GET /api/v1/operations/{id}":         s.getOperation,
		"POST /api/v1/operations/{id}/cancel": s.cancelOperation,
		"GET /api/v1/doctor":                  s.getDoctor,
		"GET /api/v1/board":                   s.getBoard,
		"GET /api/v1/boards":                  s.getBoards,
		"POST /api/v1/config/reload":          s.reloadConfig,
		"POST /api/v1/login":                  s.sessions.login,
		"POST /api/v1/logout":                 s.sessions.logout,
		"GET /api/v1/session":                 s.getSession,
	} {
		s.Handle(pattern, h)
	}
	return s
}

// Handler returns the API's handler for one listener. trusted is true for
// the unix socket.
func (s *Server) Handler(trusted bool) http.Handler {
	return s.handler(trusted, func(r *http.Request) caller {
		return caller{origin: originOf(r, trusted)}
	})
}

// InProcess returns the handler for a front end inside the agent (the
// fleet link): the same route table as the socket's, authorised by the
// front end itself before it calls, every operation journalled with
// origin and the request's RefHeader. No listener serves it.
func (s *Server) InProcess(origin journal.Origin) http.Handler {
	return s.handler(true, func(r *http.Request) caller {
		return caller{origin: origin, ref: r.Header.Get(apitype.RefHeader)}
	})
}

// caller is who a request is from, as journalled with its operation,
// and the route it called.
type caller struct {
	origin journal.Origin
	ref    string
	route  Route
}

func (s *Server) handler(trusted bool, who func(*http.Request) caller) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		handle := s.handlers[rt.Pattern()]
		if handle == nil || rt.Session && trusted {
			continue // not served: a domain that gave none, or the page's sessions on the socket
		}
		mux.HandleFunc(rt.Pattern(), func(w http.ResponseWriter, r *http.Request) {
			if !trusted && !rt.Session {
				if err := s.sessions.authorize(r, rt.Mutating); err != nil {
					s.writeError(w, err)
					return
				}
			}
			c := who(r)
			c.route = rt
			r = r.WithContext(withCaller(r.Context(), c))
			if err := handle(w, r); err != nil {
				s.writeError(w, err)
			}
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, Errorf(http.StatusNotFound, "api.not_found", "no such API call: "+r.Method+" "+r.URL.Path, ""))
	})
	return mux
}

// Shutdown cancels running operations and waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.ops.shutdown(ctx) }

// Run starts an operation on behalf of the daemon itself (origin "auto"),
// e.g. a reload on SIGHUP, and waits for it when it is short.
func (s *Server) Run(spec Spec, fn OpFunc) (journal.Operation, error) {
	return s.ops.start(caller{origin: journal.OriginAuto}, spec, fn)
}

type callerKey struct{}

func withCaller(ctx context.Context, c caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func originOf(r *http.Request, trusted bool) journal.Origin {
	if !trusted {
		return journal.OriginWeb
	}
	switch o := journal.Origin(r.Header.Get(apitype.OriginHeader)); o {
	case journal.OriginProvision, journal.OriginAuto:
		return o
	}
	return journal.OriginCLI
}

// Operate runs a mutating call as a journalled operation and answers with
// it: 200 and the final record when short, 202 and the id when long.
// Whether it is long is the route's (Route.Long), not the spec's.
func (s *Server) Operate(w http.ResponseWriter, r *http.Request, spec Spec, fn OpFunc) error {
	who, _ := r.Context().Value(callerKey{}).(caller)
	if who.route.Path != "" {
		if !who.route.Mutating {
			return fmt.Errorf("%s is not a mutating route: it cannot start an operation", who.route.Pattern())
		}
		spec.Long = who.route.Long
	}
	op, err := s.ops.start(who, spec, fn)
	if err != nil {
		return err
	}
	loc := "/api/v1/operations/" + strconv.FormatUint(op.ID, 10)
	w.Header().Set("Location", loc)
	if spec.Long {
		writeJSON(w, http.StatusAccepted, apitype.Accepted{ID: op.ID, Location: loc})
		return nil
	}
	status := http.StatusOK
	if op.Error != nil {
		status = s.statusForCode(op.Error.Code)
	}
	writeJSON(w, status, op)
	return nil
}

// statusForCode gives a failed short operation the HTTP status its error
// would have had, so clients can treat it like any other failure.
func (s *Server) statusForCode(code string) int {
	switch {
	case strings.HasSuffix(code, ".invalid"):
		return http.StatusBadRequest
	case strings.HasSuffix(code, ".not_found"):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) error {
	if sw, ok := s.backend.(StatusWriter); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = sw.WriteStatus(w) // an error is the client gone
		return nil
	}
	writeJSON(w, http.StatusOK, s.backend.Status(r.Context()))
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	if err := s.sessions.CheckHost(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.sessions.info(r))
	return nil
}

func (s *Server) getDoctor(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.backend.Doctor(r.Context()))
	return nil
}

func (s *Server) getBoard(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.backend.Board(r.Context()))
	return nil
}

func (s *Server) getBoards(w http.ResponseWriter, r *http.Request) error {
	v, err := s.backend.Boards(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) reloadConfig(w http.ResponseWriter, r *http.Request) error {
	return s.Operate(w, r, Spec{Kind: "config.reload", Summary: "reload the config file"},
		func(ctx context.Context, _ ProgressFunc) (any, error) {
			return s.backend.ReloadConfig(ctx)
		})
}

func (s *Server) listOperations(w http.ResponseWriter, r *http.Request) error {
	q := journal.Query{
		Kind: r.URL.Query().Get("kind"), Origin: r.URL.Query().Get("origin"),
		State: journal.State(r.URL.Query().Get("state")),
	}
	var err error
	if q.Limit, err = intParam(r, "limit"); err != nil {
		return err
	}
	before, err := intParam(r, "before")
	if err != nil {
		return err
	}
	q.Before = uint64(before)
	ops, err := s.journal.List(q)
	if err != nil {
		return err
	}
	if ops == nil {
		ops = []journal.Operation{}
	}
	writeJSON(w, http.StatusOK, ops)
	return nil
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return Errorf(http.StatusBadRequest, "api.invalid", fmt.Sprintf("operation id %q is not a number", r.PathValue("id")), "")
	}
	op, err := s.journal.Get(id)
	if errors.Is(err, journal.ErrNotFound) {
		return Errorf(http.StatusNotFound, "operation.not_found", fmt.Sprintf("no operation %d", id), "boxagent history lists the operations")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, op)
	return nil
}

func intParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, Errorf(http.StatusBadRequest, "api.invalid", fmt.Sprintf("%s=%q is not a whole number", name, v), "")
	}
	return n, nil
}

// SSEWriteTimeout bounds each write of an event stream.
var SSEWriteTimeout = 30 * time.Second

// KeepAliveInterval is how often an idle event stream gets a comment.
var KeepAliveInterval = 25 * time.Second

// getEvents streams events as text/event-stream until the client goes
// away. A client that reconnects with Last-Event-ID gets what it missed,
// as far as the broker still holds it.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errors.New("cannot stream: the connection does not support flushing")
	}
	var after uint64
	v := r.Header.Get("Last-Event-ID")
	if v != "" {
		var err error
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Errorf(http.StatusBadRequest, "api.invalid", "Last-Event-ID is not a number", "")
		}
	}
	ch, dropped, cancel := s.events.Subscribe(after, v != "")
	defer cancel()
	// The server's ReadTimeout and WriteTimeout are for requests; a
	// stream lives on, with a deadline per write instead: a client that
	// stops reading is dropped after SSEWriteTimeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	arm := func() { _ = rc.SetWriteDeadline(time.Now().Add(SSEWriteTimeout)) }
	arm()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// A comment line so the client knows the stream is open.
	fmt.Fprintf(w, ": boxagent events\n\n")
	flusher.Flush()
	// Keep-alives stop idle proxies and NATs from cutting the stream; this
	// is a heartbeat, not a poll of any state.
	keepalive := time.NewTicker(KeepAliveInterval)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.ops.ctx.Done():
			return nil
		case <-dropped:
			return nil
		case <-keepalive.C:
			arm()
			fmt.Fprintf(w, ": keep-alive\n\n")
		case ev := <-ch:
			arm()
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, compactEvent(ev))
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// DecodeJSON reads a JSON request body into v; a malformed body is the
// caller's mistake (400), and unknown fields are refused so a typo in a
// script does not pass silently.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "api.invalid", "cannot read the request: "+err.Error(), "")
	}
	return nil
}

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }
