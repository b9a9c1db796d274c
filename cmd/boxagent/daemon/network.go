package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/network"
)

// networkDomain is the agent's wired uplinks: a network.Manager on the
// agent's own namespace, applied at start and on every reload, its link
// watch following the kernel. Changes go out as "net" events.
type networkDomain struct {
	a   *agent
	log *slog.Logger

	mu       sync.Mutex
	m        *network.Manager
	h        *netlink.Handle
	startErr error
	refused  error // of the last table refused whole (nil once one is taken)
	watched  chan struct{}
}

func newNetworkDomain(a *agent) *networkDomain {
	return &networkDomain{a: a, log: a.log.With("component", "network")}
}

func (d *networkDomain) Name() string { return "network" }

// NetRenewRequest is the body of POST /api/v1/net/renew.
type NetRenewRequest struct {
	Link string `json:"link"`
}

func (d *networkDomain) Register(api *localapi.Server) {
	api.Handle("GET", "/api/v1/net", false, d.getNet)
	api.Handle("POST", "/api/v1/net/apply", true, d.postApply)
	api.Handle("POST", "/api/v1/net/renew", true, d.postRenew)
	api.AddMapper(mapNetworkError)
}

// Start opens a netlink handle, starts the link watch and applies the
// [network] table: journalled when it has uplinks.
func (d *networkDomain) Start(ctx context.Context) error {
	h, err := netlink.NewHandle()
	if err != nil {
		d.mu.Lock()
		d.startErr = fmt.Errorf("cannot open netlink: %w", err)
		d.mu.Unlock()
		return d.startErr
	}
	m := network.NewManager(network.ManagerOptions{
		Handle: h, ResolvConf: d.a.paths.Own("/run/boxagent/resolv.conf"), Logger: d.a.log,
		OnEvent: func(e network.UplinkEvent) { d.a.events.Publish("net", e) },
	})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if err := m.Watch(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("link watch ended", "err", err)
		}
	}()
	d.mu.Lock()
	d.m, d.h, d.watched = m, h, watched
	d.mu.Unlock()

	cfg := d.a.config().Network
	if len(cfg.Uplinks) == 0 {
		// Nothing to journal: at most, links a former config left go.
		_, err := d.apply(ctx, cfg)
		return err
	}
	op, err := d.a.api.Run(localapi.Spec{Kind: "net.apply", Summary: "apply [network] at start"},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return d.apply(ctx, cfg) })
	if err != nil {
		return err
	}
	if op.Error != nil {
		return errors.New(op.Error.Message)
	}
	return nil
}

// apply applies cfg and remembers how it went, for Health.
func (d *networkDomain) apply(ctx context.Context, cfg network.Config) (network.ApplyResult, error) {
	m := d.manager()
	if m == nil {
		return network.ApplyResult{}, d.notRunning()
	}
	res, err := m.Apply(ctx, cfg)
	d.mu.Lock()
	if errors.Is(err, network.ErrInvalid) {
		// Nothing changed: the former state stands.
		d.refused = err
	} else {
		d.refused = nil
	}
	d.mu.Unlock()
	if err != nil {
		d.log.Warn("cannot apply [network] whole", "err", err)
	}
	return res, err
}

func (d *networkDomain) manager() *network.Manager {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m
}

func (d *networkDomain) notRunning() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.startErr != nil {
		return fmt.Errorf("the network subsystem is not running: %w", d.startErr)
	}
	return errors.New("the network subsystem is not running")
}

// Reconfigure applies a reloaded [network] table when it changed.
func (d *networkDomain) Reconfigure(ctx context.Context, old, cfg *config.Config) ([]string, error) {
	if reflect.DeepEqual(old.Network, cfg.Network) {
		return nil, nil
	}
	res, err := d.apply(ctx, cfg.Network)
	var notes []string
	if len(res.Uplinks) > 0 {
		notes = append(notes, "network: uplinks in place: "+strings.Join(res.Uplinks, ", "))
	}
	if len(res.Removed) > 0 {
		notes = append(notes, "network: removed: "+strings.Join(res.Removed, ", "))
	}
	return notes, err
}

// Health is failed without netlink, degraded while an uplink is down
// (naming it and why), ok otherwise.
func (d *networkDomain) Health() localapi.Subsystem {
	h := localapi.Subsystem{Name: "network", State: localapi.StateOK}
	d.mu.Lock()
	m, startErr, refused := d.m, d.startErr, d.refused
	d.mu.Unlock()
	if m == nil {
		h.State, h.Detail = localapi.StateFailed, "not started"
		if startErr != nil {
			h.Detail = startErr.Error()
		}
		return h
	}
	if refused != nil {
		h.State, h.Detail = localapi.StateDegraded, refused.Error()
		return h
	}
	st := m.Status()
	if len(st) == 0 {
		h.Detail = "no uplinks configured"
		return h
	}
	var up, down []string
	for _, u := range st {
		if u.Up {
			up = append(up, u.Name+" "+u.Method)
		} else {
			down = append(down, fmt.Sprintf("%s down (%s)", u.Name, u.Detail))
		}
	}
	if len(down) > 0 {
		h.State = localapi.StateDegraded
		h.Detail = strings.Join(append(down, up...), "; ")
		return h
	}
	h.Detail = strings.Join(up, ", ") + " up"
	return h
}

func (d *networkDomain) Stop() {
	d.mu.Lock()
	m, h, watched := d.m, d.h, d.watched
	d.mu.Unlock()
	if m == nil {
		return
	}
	// The domain context is cancelled before Stop: the watch ends.
	<-watched
	m.Close()
	h.Close()
}

func (d *networkDomain) getNet(w http.ResponseWriter, r *http.Request) error {
	m := d.manager()
	if m == nil {
		return d.notRunning()
	}
	v, err := m.View()
	if err != nil {
		return err
	}
	localapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (d *networkDomain) postApply(w http.ResponseWriter, r *http.Request) error {
	return d.a.api.Operate(w, r, localapi.Spec{Kind: "net.apply", Summary: "apply [network]"},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			return d.apply(ctx, d.a.config().Network)
		})
}

func (d *networkDomain) postRenew(w http.ResponseWriter, r *http.Request) error {
	var req NetRenewRequest
	if err := localapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Link == "" {
		return localapi.Errorf(http.StatusBadRequest, "network.invalid", "link: missing: name the uplink's link (\"eth0.45\")", "boxagent net show lists the uplinks")
	}
	m := d.manager()
	if m == nil {
		return d.notRunning()
	}
	return d.a.api.Operate(w, r, localapi.Spec{Kind: "net.renew", Summary: "renew the DHCP lease of " + req.Link, Request: req},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			if err := m.Renew(req.Link); err != nil {
				return nil, err
			}
			return map[string]string{"link": req.Link, "state": "renewing"}, nil
		})
}

// mapNetworkError gives network errors their API codes and hints.
func mapNetworkError(err error) *localapi.Error {
	var le *network.LinkError
	switch {
	case errors.Is(err, network.ErrInvalid):
		return localapi.Errorf(http.StatusBadRequest, "network.invalid", err.Error(), "fix [network] in the config file, then boxagent config check FILE; nothing was changed")
	case errors.Is(err, network.ErrNoUplink):
		return localapi.Errorf(http.StatusNotFound, "network.not_found", err.Error(), "boxagent net show lists the uplinks")
	case errors.Is(err, network.ErrNoVLANSupport):
		return localapi.Errorf(http.StatusInternalServerError, "network.no_vlan", err.Error(), "modprobe 8021q (and add 8021q to /etc/modules)")
	case errors.As(err, &le):
		return localapi.Errorf(http.StatusInternalServerError, "network.link_failed", err.Error(), le.Hint())
	}
	return nil
}
