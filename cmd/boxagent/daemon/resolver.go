package daemon

import (
	"context"
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/deploy/systemd"
	"github.com/boxagent/boxagent/network"
)

// startResolved hands the uplinks' DNS servers to systemd-resolved, per
// link, for as long as ctx lasts: on its own bus connection, so that its
// signals wait on no other domain's. A box without a system bus keeps its
// resolv.conf alone.
func (d *networkDomain) startResolved(ctx context.Context) {
	conn, err := dbus.ConnectSystemBus(dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()), dbus.WithContext(ctx))
	if err != nil {
		d.log.Info("no system bus: DNS servers go to resolv.conf only", "err", err)
		return
	}
	r := network.NewResolved(conn, d.log)
	d.mu.Lock()
	d.resolved = r
	d.mu.Unlock()
	d.dns.PublishTo(r)
	go func() {
		defer conn.Close()
		if err := r.Run(ctx); err != nil {
			d.log.Warn("cannot follow systemd-resolved", "err", err)
		}
	}()
}

// resolverCheck is the doctor's line on how the uplinks' DNS servers
// reach the box's programs: /etc/resolv.conf as the agent's link, or
// systemd-resolved told per link, or neither (with the fix).
func (a *agent) resolverCheck() apitype.Check {
	var st *network.ResolvedState
	for _, d := range a.domains {
		if nd, ok := d.(*networkDomain); ok {
			nd.mu.Lock()
			if nd.resolved != nil {
				s := nd.resolved.State()
				st = &s
			}
			nd.mu.Unlock()
		}
	}
	root, err := os.OpenRoot(a.paths.Own("/"))
	if err != nil {
		return apitype.Check{Name: "resolver", Result: apitype.CheckFail, Detail: err.Error()}
	}
	defer root.Close()
	owner, err := network.ResolvConfOwnerIn(root)
	if err != nil {
		return apitype.Check{Name: "resolver", Result: apitype.CheckFail, Detail: err.Error()}
	}
	hook := false
	for _, dir := range systemd.UnitDirs() {
		if _, err := os.Stat(a.paths.Own(dir + "/boxagent-resolvconf.path")); err == nil {
			hook = true
		}
	}
	return resolverCheck(owner, st, hook)
}

// resolverCheck decides the doctor's line from who keeps /etc/resolv.conf,
// what resolved said (nil: the agent has no bus) and whether the package's
// boxagent-resolvconf.path is installed.
func resolverCheck(owner network.Owner, st *network.ResolvedState, resolvconfHook bool) apitype.Check {
	c := apitype.Check{Name: "resolver", Result: apitype.CheckOK}
	link := "ln -sf " + network.AgentResolvConf + " /etc/resolv.conf"
	switch {
	case owner == network.OwnerResolved && (st == nil || !st.Present):
		c.Result, c.Detail = apitype.CheckWarn, "/etc/resolv.conf is systemd-resolved's, which is not running"
		c.Fix = "systemctl start systemd-resolved, or " + link
	case owner == network.OwnerResolved && st.Err != "":
		c.Result, c.Detail = apitype.CheckFail, "systemd-resolved refuses the uplinks' DNS servers: "+st.Err
		c.Fix = "install boxagent's polkit rule (/usr/share/polkit-1/rules.d/50-boxagent.rules) and restart polkit"
	case owner == network.OwnerResolved:
		c.Detail = fmt.Sprintf("systemd-resolved, told each uplink's DNS servers over D-Bus, on %d link(s)", st.Links)
	case owner == network.OwnerResolvconf && resolvconfHook:
		c.Detail = "resolvconf, handed the agent's file by boxagent-resolvconf.path (record \"boxagent\")"
	case owner == network.OwnerResolvconf:
		c.Result, c.Detail = apitype.CheckWarn, "/etc/resolv.conf is resolvconf's, and boxagent-resolvconf.path is not installed"
		c.Fix = "install boxagent's package (it ships the unit), then systemctl enable --now boxagent-resolvconf.path"
	case owner == network.OwnerAgent:
		c.Detail = "/etc/resolv.conf is the agent's " + network.AgentResolvConf
	case owner == network.OwnerNobody:
		c.Result, c.Detail, c.Fix = apitype.CheckWarn, "/etc/resolv.conf is missing or a link to a file nobody writes", link
	default:
		c.Result = apitype.CheckWarn
		c.Detail = fmt.Sprintf("/etc/resolv.conf is %s's: programs on the box do not use the uplinks' DNS servers", owner)
		if owner == network.OwnerFile {
			c.Detail = "/etc/resolv.conf is a file the agent does not write: programs on the box do not use the uplinks' DNS servers"
		}
		c.Fix = link + " (if " + string(owner) + " is not needed)"
	}
	return c
}
