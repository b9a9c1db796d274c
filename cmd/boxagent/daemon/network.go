package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/vishvananda/netlink"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
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

	// wifi lists the Wi-Fi link beside the wired uplinks in GET
	// /api/v1/net (buildDomains); nil lists none.
	wifi *wifiDomain

	mu       sync.Mutex
	m        *network.Manager
	h        *netlink.Handle
	startErr error
	refused  error // of the last table refused whole (nil once one is taken)
	watched  chan struct{}

	dns      *network.ResolvConf // the agent's one resolv.conf, shared with Wi-Fi (buildDomains)
	resolved *network.Resolved   // systemd-resolved told the same, per link; nil without a bus (resolver.go)
}

func newNetworkDomain(a *agent) *networkDomain {
	return &networkDomain{a: a, log: a.log.With("component", "network")}
}

func (d *networkDomain) Name() string { return "network" }

func (d *networkDomain) Register(api *localapi.Server) {
	api.Handle("GET /api/v1/net", d.getNet)
	api.Handle("POST /api/v1/net/apply", d.postApply)
	api.Handle("POST /api/v1/net/renew", d.postRenew)
	api.Handle("POST /api/v1/net/uplinks", d.postUplink)
	api.Handle("DELETE /api/v1/net/uplinks/{name}", d.deleteUplink)
}

// Start opens a netlink handle, starts the link watch and applies the
// [network] table: journalled when it has uplinks.
func (d *networkDomain) Start(ctx context.Context) error {
	h, err := netlink.NewHandle()
	if err != nil {
		d.mu.Lock()
		d.startErr = fmt.Errorf("cannot open netlink: %w", err)
		d.mu.Unlock()
		d.a.statusChanged()
		return d.startErr
	}
	d.startResolved(ctx)
	m := network.NewManager(network.ManagerOptions{
		Handle: h, ResolvConf: d.a.paths.Own("/run/boxagent/resolv.conf"), DNS: d.dns, Logger: d.a.log,
		OnEvent: func(e network.UplinkEvent) { d.a.events.Publish("net", e) },
		Reapply: d.reapply,
		// pppd in an instance of boxagent-pppoe@.service under systemd ([network] pppd);
		// read at start: a change takes effect at the next one.
		PPPoE: network.PPPoEConfig{Runner: d.a.config().Network.PPPD, SocketDir: d.a.paths.PPPoESockets()},
		// 802.1X uplinks: wpa_supplicant on the system bus, dialled at the
		// first one. Not with the apply's context: godbus closes a
		// connection when its context ends.
		DialBus: func(context.Context) (*dbus.Conn, error) {
			return dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()))
		},
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
	d.a.statusChanged()

	cfg := d.a.config().Network
	if len(cfg.Uplinks) == 0 {
		// Nothing to journal: at most, links a former config left go.
		_, err := d.apply(ctx, cfg, true)
		return err
	}
	return d.a.runAuto("net.apply", "apply [network] at start",
		func(ctx context.Context) (any, error) { return d.apply(ctx, cfg, true) })
}

// reapply journals what the manager does on its own (the link watch
// applying an uplink again after a carrier flap, a lease that changed the
// address) as a "net.reapply" operation of origin auto, the trigger in
// its request; its events go out like any operation's.
func (d *networkDomain) reapply(r network.Reapply, do func(context.Context) (any, error)) {
	spec := localapi.Spec{Kind: "net.reapply", Summary: r.Trigger + ": " + r.Reason, Request: r}
	op, err := d.a.api.Run(spec, func(ctx context.Context, _ localapi.ProgressFunc) (any, error) { return do(ctx) })
	switch {
	case err != nil:
		// The agent is stopping: what would be re-applied waits for
		// the next start, which applies everything.
		d.log.Info("re-apply not run", "reason", r.Reason, "err", err)
	case op.Error != nil:
		d.log.Warn("re-apply failed", "reason", r.Reason, "err", op.Error.Message)
	}
}

// apply applies cfg and remembers how it went, for Health. At boot, an
// uplink whose parent is not there yet waits for it; later, a table
// naming a missing parent is refused whole.
func (d *networkDomain) apply(ctx context.Context, cfg network.Config, boot bool) (network.ApplyResult, error) {
	m := d.manager()
	if m == nil {
		return network.ApplyResult{}, d.notRunning()
	}
	apply := m.Apply
	if boot {
		apply = m.ApplyAtBoot
	}
	res, err := apply(ctx, cfg)
	d.mu.Lock()
	if errors.Is(err, network.ErrInvalid) {
		// Nothing changed: the former state stands.
		d.refused = err
	} else {
		d.refused = nil
	}
	d.mu.Unlock()
	d.a.statusChanged() // the uplinks its line lists are cfg's now
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
	res, err := d.apply(ctx, cfg.Network, false)
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
func (d *networkDomain) Health() apitype.Subsystem {
	h := apitype.Subsystem{Name: "network", State: apitype.StateOK}
	d.mu.Lock()
	m, startErr, refused := d.m, d.startErr, d.refused
	d.mu.Unlock()
	if m == nil {
		h.State, h.Detail = apitype.StateFailed, "not started"
		if startErr != nil {
			h.Detail = startErr.Error()
		}
		return h
	}
	if refused != nil {
		h.State, h.Detail = apitype.StateDegraded, refused.Error()
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
		h.State = apitype.StateDegraded
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
	if d.wifi != nil {
		v.WiFi = d.wifi.uplink()
	}
	v.FillDefault()
	localapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (d *networkDomain) postApply(w http.ResponseWriter, r *http.Request) error {
	return d.a.api.Operate(w, r, localapi.Spec{Kind: "net.apply", Summary: "apply [network]"},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			return d.apply(ctx, d.a.config().Network, false)
		})
}

func (d *networkDomain) postRenew(w http.ResponseWriter, r *http.Request) error {
	var req apitype.NetRenewRequest
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
			return apitype.NetRenewResult{Link: req.Link, State: "renewing"}, nil
		})
}

// postUplink adds an uplink to the config file and applies it: the
// whole new file is validated and the parents checked first; an invalid
// one changes nothing.
func (d *networkDomain) postUplink(w http.ResponseWriter, r *http.Request) error {
	var u network.Uplink
	if err := localapi.DecodeJSON(r, &u); err != nil {
		return err
	}
	shown := u
	if shown.IPv4.Password != "" {
		shown.IPv4.Password = config.Fingerprint(shown.IPv4.Password)
	}
	return d.a.api.Operate(w, r, localapi.Spec{Kind: "net.uplink.add", Summary: "add uplink " + u.LinkName(), Request: shown},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			return d.editConfig(ctx, func(text []byte, cfg network.Config) ([]byte, network.Config, error) {
				for _, have := range cfg.Uplinks {
					if have.LinkName() == u.LinkName() {
						return nil, cfg, &network.InvalidError{Problems: []network.FieldError{{Key: "uplink", Msg: fmt.Sprintf("link %q is already an uplink; boxagent net uplink del %s first", u.LinkName(), u.LinkName())}}}
					}
				}
				block, err := uplinkTOML(u)
				if err != nil {
					return nil, cfg, err
				}
				out := append([]byte{}, text...)
				if len(out) > 0 && out[len(out)-1] != '\n' {
					out = append(out, '\n')
				}
				out = append(out, '\n')
				out = append(out, block...)
				cfg.Uplinks = append(cfg.Uplinks, u)
				return out, cfg, nil
			})
		})
}

// deleteUplink removes an uplink (by its link name) from the config file
// and applies the rest: what the agent made for it goes.
func (d *networkDomain) deleteUplink(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	return d.a.api.Operate(w, r, localapi.Spec{Kind: "net.uplink.del", Summary: "remove uplink " + name, Request: map[string]string{"name": name}},
		func(ctx context.Context, _ localapi.ProgressFunc) (any, error) {
			return d.editConfig(ctx, func(text []byte, cfg network.Config) ([]byte, network.Config, error) {
				i := slices.IndexFunc(cfg.Uplinks, func(u network.Uplink) bool { return u.LinkName() == name })
				if i < 0 {
					return nil, cfg, fmt.Errorf("%w %q", errNoConfiguredUplink, name)
				}
				out, ok := dropUplinkBlock(text, i)
				if !ok {
					return nil, cfg, errors.New("cannot edit the config file: its uplinks are not [[network.uplink]] tables; edit it by hand")
				}
				cfg.Uplinks = slices.Delete(slices.Clone(cfg.Uplinks), i, i+1)
				return out, cfg, nil
			})
		})
}

var errNoConfiguredUplink = errors.New("no uplink with link name")

// editConfig changes the config file through config.Edit, the file's one
// writer: edit gets its text and [network] table and returns the new text
// and the table it must parse to. The new file is validated whole (and the
// parents checked) before it replaces the old one atomically (temporary
// file, fsync, rename, fsync of the folder, mode 0600); then the agent
// reloads it, which applies it.
func (d *networkDomain) editConfig(ctx context.Context, edit func([]byte, network.Config) ([]byte, network.Config, error)) (apitype.NetEditResult, error) {
	path := d.a.cfgPath
	res := apitype.NetEditResult{Config: path}
	_, err := config.Edit(path, func(text []byte, cur *config.Config) ([]byte, error) {
		out, want, err := edit(text, cur.Network)
		if err != nil {
			return nil, err
		}
		next, err := config.Parse(path, out)
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(normalNet(next.Network), normalNet(want)) {
			return nil, errors.New("cannot edit the config file safely: the edited file does not read back as intended; edit it by hand")
		}
		if m := d.manager(); m != nil {
			if err := m.Check(next.Network); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	if err != nil {
		return res, err
	}
	res.Reload, err = d.a.ReloadConfig(ctx)
	return res, err
}

// normalNet makes empty maps and slices nil, so that a table compares
// equal to itself read back.
func normalNet(c network.Config) network.Config {
	out := network.Config{}
	for _, u := range c.Uplinks {
		if len(u.IPv4.Options) == 0 {
			u.IPv4.Options = nil
		}
		if len(u.IPv4.DNS) == 0 {
			u.IPv4.DNS = nil
		}
		out.Uplinks = append(out.Uplinks, u)
	}
	return out
}

// uplinkTOML is one [[network.uplink]] table.
func uplinkTOML(u network.Uplink) ([]byte, error) {
	var doc struct {
		Network struct {
			Uplink []network.Uplink `toml:"uplink"`
		} `toml:"network"`
	}
	doc.Network.Uplink = []network.Uplink{u}
	b, err := toml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("cannot write the uplink as TOML: %w", err)
	}
	// The [network] line would define the table a second time in a file
	// that has it.
	lines := strings.SplitAfter(string(b), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "[network]" })
	return []byte(strings.Join(lines, "")), nil
}

// dropUplinkBlock removes the i-th [[network.uplink]] table and its
// sub-tables ([network.uplink.ipv4], …) from text. ok is false when the
// file does not hold that many such headers.
func dropUplinkBlock(text []byte, i int) ([]byte, bool) {
	lines := strings.SplitAfter(string(text), "\n")
	header := func(l string) string {
		l = strings.TrimSpace(l)
		if h, _, ok := strings.Cut(l, "#"); ok {
			l = strings.TrimSpace(h)
		}
		if !strings.HasPrefix(l, "[") {
			return ""
		}
		return strings.ReplaceAll(l, " ", "")
	}
	n, start, end := -1, -1, len(lines)
	for j, l := range lines {
		h := header(l)
		switch {
		case h == "[[network.uplink]]":
			n++
			if n == i {
				start = j
				continue
			}
			if start >= 0 {
				end = j
			}
		case h != "" && start >= 0 && !strings.HasPrefix(h, "[network.uplink.") && !strings.HasPrefix(h, "[[network.uplink."):
			end = j
		}
		if start >= 0 && end != len(lines) {
			break
		}
	}
	if start < 0 {
		return nil, false
	}
	out := slices.Concat(lines[:start], lines[end:])
	return []byte(strings.Join(out, "")), true
}
