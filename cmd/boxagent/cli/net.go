package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/boxagent/boxagent/network"
)

func netCmd() *Command {
	return &Command{
		Name: "net", Usage: "show|apply|renew IFACE", Short: "show and apply the wired uplinks (VLAN, DHCP/IPoE, static, PPPoE)",
		Long: `show     the uplinks with their state, leases (with renew, rebind and expiry
         times, and the DHCP options sent), PPPoE sessions, and the box's links,
         IPv4 addresses and routes
apply    apply the [network] table of the config file again (journalled)
renew    ask the DHCP client of IFACE to renew its lease now (journalled)

The uplinks themselves are [[network.uplink]] tables in the config file;
boxagent config reload applies an edited file.`,
		Flags: jsonFlag,
		Verbs: []string{"show", "apply", "renew"},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			verb := "show"
			if len(args) > 0 {
				verb, args = args[0], args[1:]
			}
			switch verb {
			case "show":
				if len(args) > 0 {
					return usagef("net show takes no arguments")
				}
				return netShow(ctx, e, o)
			case "apply":
				if len(args) > 0 {
					return usagef("net apply takes no arguments")
				}
				res, op, err := o.client().NetApply(ctx)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "applied: %s\n", netList(res.Uplinks))
				if len(res.Started) > 0 {
					fmt.Fprintf(e.Stdout, "started: %s\n", strings.Join(res.Started, ", "))
				}
				if len(res.Removed) > 0 {
					fmt.Fprintf(e.Stdout, "removed: %s\n", strings.Join(res.Removed, ", "))
				}
				fmt.Fprintf(e.Stderr, "operation %d; boxagent net show follows the leases\n", op.ID)
				return nil
			case "renew":
				if len(args) != 1 {
					return usagef("net renew takes one link name (boxagent net show lists them)")
				}
				if len(args[0]) > 15 {
					return usagef("link name %q is %d bytes long; Linux allows at most 15", args[0], len(args[0]))
				}
				op, err := o.client().NetRenew(ctx, args[0])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "%s: renewing (operation %d)\n", args[0], op.ID)
				return nil
			}
			return usagef("unknown verb %q", verb)
		},
	}
}

func netList(s []string) string {
	if len(s) == 0 {
		return "(no uplinks)"
	}
	return strings.Join(s, ", ")
}

func netShow(ctx context.Context, e *Env, o *Opts) error {
	v, err := o.client().Net(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(e.Stdout, v)
	}
	w := e.Stdout
	if len(v.Uplinks) == 0 {
		fmt.Fprintln(e.Stderr, "no uplinks configured ([[network.uplink]] in the config file)")
	} else {
		t := newTable(w, "UPLINK", "PARENT", "VLAN", "METHOD", "STATE", "ADDRESS", "DETAIL")
		for _, u := range v.Uplinks {
			vlan := "-"
			if u.VLAN != nil {
				vlan = strconv.Itoa(*u.VLAN)
			}
			state, addr := "down", "-"
			if u.Up {
				state = "up"
			}
			switch {
			case u.DHCP != nil && u.DHCP.Lease != nil:
				addr = u.DHCP.Lease.Address.String()
			case u.PPPoE != nil && u.PPPoE.Address.IsValid():
				addr = u.PPPoE.Address.String() + " on " + u.PPPoE.Link
			}
			t.row(u.Name, u.Parent, vlan, u.Method, state, addr, netDash(u.Detail))
		}
		if err := t.flush(); err != nil {
			return err
		}
		for _, u := range v.Uplinks {
			printUplinkDetail(w, u)
		}
		fmt.Fprintln(w)
	}
	t := newTable(w, "LINK", "KIND", "PARENT", "VLAN", "MTU", "STATE", "MAC", "OWNER")
	for _, l := range v.Links {
		vlan := "-"
		if l.VLAN != 0 {
			vlan = strconv.Itoa(l.VLAN)
			if p := netEgress(l.Egress); p != "" {
				vlan += " " + p
			}
		}
		owner := "-"
		if l.Owned {
			owner = "boxagent"
		}
		t.row(l.Name, l.Kind, netDash(l.Parent), vlan, strconv.Itoa(l.MTU), l.State, netDash(l.MAC), owner)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, "ADDRESS", "LINK", "VALID")
	for _, a := range v.Addresses {
		valid := "forever"
		if a.ValidFor != nil {
			valid = (time.Duration(*a.ValidFor) * time.Second).String()
		}
		t.row(a.Address, a.Link, valid)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, "ROUTE", "VIA", "LINK", "METRIC", "PROTO")
	for _, r := range v.Routes {
		t.row(r.Dst, netDash(r.Gateway), netDash(r.Link), strconv.Itoa(r.Metric), r.Protocol)
	}
	return t.flush()
}

// printUplinkDetail prints a lease's times and options, or a session's
// state, under the uplinks table.
func printUplinkDetail(w io.Writer, u network.UplinkStatus) {
	if d := u.DHCP; d != nil {
		fmt.Fprintf(w, "\n%s: dhcp %s", u.Name, d.State)
		if d.Error != "" {
			fmt.Fprintf(w, " (%s)", d.Error)
		}
		fmt.Fprintln(w)
		if l := d.Lease; l != nil {
			fmt.Fprintf(w, "  lease:    %s from %s, router %s, dns %s\n", l.Address, l.Server, netAddr(l.Router.String()), netDNS(l))
			fmt.Fprintf(w, "  acquired: %s\n  renew:    %s\n  rebind:   %s\n  expires:  %s\n",
				stamp(l.Acquired), stamp(l.RenewAt), stamp(l.RebindAt), stamp(l.ExpiresAt))
		}
		codes := make([]int, 0, len(d.Sent))
		for c := range d.Sent {
			n, _ := strconv.Atoi(c)
			codes = append(codes, n)
		}
		slices.Sort(codes)
		for _, c := range codes {
			if c == 55 || c == 57 {
				continue // the client's own: parameter list, message size
			}
			fmt.Fprintf(w, "  sent %-3d  %s\n", c, d.Sent[strconv.Itoa(c)])
		}
	}
	if p := u.PPPoE; p != nil {
		fmt.Fprintf(w, "\n%s: pppoe ", u.Name)
		if p.Up {
			fmt.Fprintf(w, "up on %s, %s peer %s since %s", p.Link, p.Address, p.Peer, stamp(p.Since))
		} else {
			fmt.Fprintf(w, "down")
		}
		fmt.Fprintf(w, " (pppd %d, started %d times, %d sessions)\n", p.PID, p.Starts, p.Connects)
		if p.LastError != "" {
			fmt.Fprintf(w, "  last problem: %s\n", p.LastError)
		}
	}
}

func netDNS(l *network.LeaseTimes) string {
	if len(l.DNS) == 0 {
		return "-"
	}
	s := make([]string, len(l.DNS))
	for i, a := range l.DNS {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func netAddr(s string) string {
	if s == "invalid IP" {
		return "-"
	}
	return s
}

// egressText is a VLAN's egress map in ip(8)'s words when every priority
// maps to one PCP: "pcp 6".
func netEgress(m map[string]uint32) string {
	var pcp uint32
	first := true
	for _, p := range m {
		if !first && p != pcp {
			return "pcp mixed"
		}
		pcp, first = p, false
	}
	if first || pcp == 0 {
		return ""
	}
	return fmt.Sprintf("pcp %d", pcp)
}

func netDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
