package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

// fleetDomain is the link to the fleet's MQTT broker ([fleet]); absent
// without the table. A reload that changes [fleet] starts the link again.
type fleetDomain struct {
	a   *agent
	log *slog.Logger

	mu     sync.Mutex
	cfg    *config.Fleet
	link   *fleet.Link
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the link could not start
}

func newFleetDomain(a *agent) *fleetDomain {
	return &fleetDomain{a: a, log: a.log.With("component", "fleet")}
}

func (d *fleetDomain) Name() string { return "fleet" }

func (d *fleetDomain) Register(api *localapi.Server) {
	api.Handle("GET /api/v1/fleet", func(w http.ResponseWriter, r *http.Request) error {
		localapi.WriteJSON(w, http.StatusOK, d.info())
		return nil
	})
}

func (d *fleetDomain) info() apitype.FleetInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := apitype.FleetInfo{Configured: d.cfg != nil}
	if d.err != nil {
		in.Error = d.err.Error()
	}
	if d.link != nil {
		in.FleetLink = d.link.Info()
	}
	return in
}

func (d *fleetDomain) Start(ctx context.Context) error {
	return d.start(d.a.config().Fleet)
}

// start runs the link of cfg (none when nil).
func (d *fleetDomain) start(cfg *config.Fleet) error {
	defer d.a.statusChanged() // after the unlock
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg, d.err, d.link = cfg, nil, nil
	if cfg == nil {
		return nil
	}
	id, err := fleet.LoadIdentity(*cfg)
	if err == nil {
		d.link, err = fleet.New(fleet.Options{
			Config: *cfg, Identity: id, Version: d.a.version,
			API: d.a.api.InProcess(journal.OriginFleet), Journal: d.a.journal, Events: d.a.events,
			Snapshot: d.a.Snapshot, Cursor: fleet.Cursor{Path: filepath.Join(d.a.paths.StateDir(), fleet.CursorFile)},
			Logger: d.a.log, Changed: d.a.statusChanged,
		})
	}
	if err != nil {
		d.err = err
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go func(l *fleet.Link, done chan struct{}) { defer close(done); l.Run(ctx) }(d.link, d.done)
	return nil
}

func (d *fleetDomain) Health() apitype.Subsystem {
	in := d.info()
	h := apitype.Subsystem{Name: "fleet"}
	switch {
	case !in.Configured:
		h.State, h.Detail = apitype.StateAbsent, "off (no [fleet] in the config)"
	case in.Error != "":
		h.State, h.Detail = apitype.StateFailed, in.Error
	case !in.Connected:
		h.State, h.Detail = apitype.StateDegraded, "connecting as "+in.ID
	default:
		// The acknowledged record is not here: status is published on
		// change, and would change with every record (GET /api/v1/fleet).
		h.State, h.Detail = apitype.StateOK, "connected to "+in.Broker+" as "+in.ID
	}
	if in.CertNotAfter != nil {
		h.Detail += fmt.Sprintf("; certificate until %s", in.CertNotAfter.UTC().Format(time.DateOnly))
	}
	return h
}

func (d *fleetDomain) Stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.cancel = nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (d *fleetDomain) Reconfigure(ctx context.Context, old, cfg *config.Config) ([]string, error) {
	if reflect.DeepEqual(old.Fleet, cfg.Fleet) {
		return nil, nil
	}
	d.Stop()
	if err := d.start(cfg.Fleet); err != nil {
		return nil, err
	}
	return []string{"[fleet] changed: the link started again"}, nil
}

// fleetCertWarning is how long before its certificate expires the doctor
// warns: a box whose certificate lapses drops off the fleet for good.
const fleetCertWarning = 30 * 24 * time.Hour

// fleetInfo is the fleet domain's info.
func (a *agent) fleetInfo() apitype.FleetInfo {
	for _, d := range a.domains {
		if f, ok := d.(*fleetDomain); ok {
			return f.info()
		}
	}
	return apitype.FleetInfo{}
}

// fleetCheck is the doctor's look at the fleet link and its certificate.
func fleetCheck(in apitype.FleetInfo, now time.Time) apitype.Check {
	c := apitype.Check{Name: "fleet", Result: apitype.CheckOK}
	switch {
	case !in.Configured:
		c.Result, c.Detail = apitype.CheckSkip, "no [fleet] in the config"
		return c
	case in.Error != "":
		c.Result, c.Detail, c.Fix = apitype.CheckFail, in.Error, "check [fleet] cert, key and ca, then boxagent config reload"
		return c
	case in.Connected:
		c.Detail = "connected to " + in.Broker + " as " + in.ID
	default:
		c.Result, c.Detail, c.Fix = apitype.CheckWarn, "not connected to any broker of [fleet] brokers", "check the broker's address and that it trusts this box's certificate"
	}
	if in.CertNotAfter != nil {
		left := in.CertNotAfter.Sub(now)
		c.Detail += fmt.Sprintf("; certificate until %s", in.CertNotAfter.UTC().Format(time.DateOnly))
		switch {
		case left <= 0:
			c.Result, c.Fix = apitype.CheckFail, "the certificate has expired: install a new one ([fleet] cert and key)"
		case left < fleetCertWarning:
			c.Result, c.Fix = apitype.CheckWarn, fmt.Sprintf("the certificate expires in %d days: install a new one ([fleet] cert and key) before then", int(left.Hours()/24))
		}
	}
	return c
}
