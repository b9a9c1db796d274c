package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

// statusCache is GET /api/v1/status's answer as of the last change of
// what it shows, encoded: a call reads it and adds the uptime, the one
// field that changes without an event. It is made again by the first
// call after a change, told two ways: every event the broker publishes
// (the domains publish theirs after they change: BlueZ and
// wpa_supplicant signals, netlink, uevents, operations, config reloads),
// and statusChanged, for a change that publishes none (a domain's health
// set, a client opened or gone, a journal moved aside or removed,
// inotify). Nothing is polled: an unchanged agent answers the same
// bytes, whatever the artifact store holds.
type statusCache struct {
	changes atomic.Uint64 // statusChanged's count
	mu      sync.Mutex    // the one writer: whoever makes the answer again
	cur     atomic.Pointer[statusAnswer]
}

// statusAnswer is one status, encoded as localapi's writeJSON encodes
// it, split where the uptime's value goes.
type statusAnswer struct {
	events, changes uint64 // the counts it was made at
	st              apitype.Status
	head, tail      []byte
}

// statusChanged says that something status shows changed without an
// event: the next call makes the answer again. Cheap, and safe under a
// domain's own lock.
func (a *agent) statusChanged() { a.status.changes.Add(1) }

func (a *agent) statusCurrent(s *statusAnswer) bool {
	return s != nil && s.events == a.events.Published() && s.changes == a.status.changes.Load()
}

// currentStatus is the answer as of now, made again if something
// changed since it was made.
func (a *agent) currentStatus() *statusAnswer {
	if s := a.status.cur.Load(); a.statusCurrent(s) {
		return s
	}
	a.status.mu.Lock()
	defer a.status.mu.Unlock()
	if s := a.status.cur.Load(); a.statusCurrent(s) {
		return s // made by the call before this one
	}
	// The counts first: a change while the answer is made leaves it
	// stale, to be made again by the next call.
	s := &statusAnswer{events: a.events.Published(), changes: a.status.changes.Load()}
	s.st = a.statusNow()
	s.head, s.tail = splitUptime(s.st)
	a.status.cur.Store(s)
	return s
}

// statusNow asks every part for its state; UptimeSeconds is left zero.
func (a *agent) statusNow() apitype.Status {
	det := a.board()
	return apitype.Status{
		Version:    a.version,
		Started:    a.started.UTC(),
		Board:      apitype.BoardInfo{ID: det.Profile.ID, Name: det.Profile.Name, Reason: det.Reason},
		Config:     a.configInfo(),
		Listeners:  a.listeners,
		Subsystems: a.subsystems(),
	}
}

// subsystems reports each part's health.
func (a *agent) subsystems() []apitype.Subsystem {
	subs := []apitype.Subsystem{
		{Name: "api", State: apitype.StateOK},
		a.journalHealth(),
	}
	for _, d := range a.domains {
		subs = append(subs, d.Health())
	}
	return subs
}

func (a *agent) uptime() float64 { return time.Since(a.started).Seconds() }

// Status implements localapi.Backend.
func (a *agent) Status(ctx context.Context) apitype.Status {
	st := a.currentStatus().st
	st.UptimeSeconds = a.uptime()
	st.Subsystems = slices.Clone(st.Subsystems)
	return st
}

// WriteStatus implements localapi.StatusWriter: the bytes localapi's
// writeJSON writes for Status's value (TestStatusAnswerBytes).
func (a *agent) WriteStatus(w io.Writer) error {
	s := a.currentStatus()
	if s.tail == nil {
		st := s.st
		st.UptimeSeconds = a.uptime()
		return encodeStatus(w, st)
	}
	var num [32]byte
	if _, err := w.Write(s.head); err != nil {
		return err
	}
	if _, err := w.Write(appendJSONFloat(num[:0], a.uptime())); err != nil {
		return err
	}
	_, err := w.Write(s.tail)
	return err
}

// encodeStatus is localapi's writeJSON's encoding: indented by two
// spaces, HTML escaped, a newline at the end.
func encodeStatus(w io.Writer, st apitype.Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// uptimeKey is the uptime's key as the top level of the indented answer
// has it; inside a string a quote is escaped, so only the key matches.
const uptimeKey = "\n  \"uptime_seconds\": "

// splitUptime encodes st (its uptime zero) and splits it around the
// uptime's value. A nil tail (never expected) means: encode each call.
func splitUptime(st apitype.Status) (head, tail []byte) {
	st.UptimeSeconds = 0
	var buf bytes.Buffer
	if encodeStatus(&buf, st) != nil {
		return nil, nil
	}
	b := buf.Bytes()
	i := bytes.Index(b, []byte(uptimeKey))
	if i < 0 || !bytes.HasPrefix(b[i+len(uptimeKey):], []byte("0,")) {
		return nil, nil
	}
	n := i + len(uptimeKey)
	return b[:n], b[n+1:]
}

// appendJSONFloat appends v as encoding/json writes a float64: the
// shortest decimal that reads back as v, and exponent notation outside
// [1e-6, 1e21).
func appendJSONFloat(b []byte, v float64) []byte {
	if v == 0 || (v >= 1e-6 && v < 1e21) {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	j, _ := json.Marshal(v)
	return append(b, j...)
}
