package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	linkname "github.com/boxagent/boxagent/internal/names"
	"github.com/boxagent/boxagent/network"
)

func netCmd() *Command {
	var fs *pflag.FlagSet
	var u network.Uplink
	var vlan, priority int
	var options, routes, vendorOptions []string
	var passwordStdin, noDefaultRoute bool
	var dot1x network.Dot1X
	return &Command{
		Name: "net", Usage: "show|apply|renew IFACE|uplink add --parent LINK [flags]|uplink del LINK", Short: "show and apply the wired uplinks (VLAN, DHCP/IPoE, static, PPPoE)",
		Long: `show        the uplinks with their state, leases (with renew, rebind and expiry
            times, and the DHCP options sent), PPPoE sessions, the Wi-Fi
            link's lease, and the box's links, IPv4 addresses and routes
apply       apply the [network] table of the config file again (journalled)
renew       ask the DHCP client of IFACE to renew its lease now (journalled)
uplink add  add a [[network.uplink]] to the config file and apply it; the
            new file is validated whole first (journalled)
uplink del  remove the uplink whose link is LINK and what the agent made
            for it (journalled)

The uplink flags are those of uplink add. A PPPoE or 802.1X password is
read from stdin (--password-stdin) or a file (--dot1x-password-file),
never from the command line. --dot1x-eap authenticates a DHCP uplink
with 802.1X (wpa_supplicant's wired driver) before DHCP starts.

An IPTV VLAN beside the uplink that carries the internet takes
--no-default-route (for IPv4, and for IPv6 when --ipv6 is given) and its
static routes: --route 'TO' or --route 'TO via GW', as ip route writes
them, once per route. --ipv6 auto|dhcp|off turns on the uplink's IPv6 and
the other IPv6 flags need it; without it the link's IPv6 is left as the
kernel has it.`,
		Flags: func(f *pflag.FlagSet, o *Opts) {
			fs = f
			jsonFlag(f, o)
			f.StringVar(&u.Name, "name", "", "uplink add: link name (default PARENT.VLAN)")
			f.StringVar(&u.Parent, "parent", "", "uplink add: the link it runs on (eth0)")
			f.IntVar(&vlan, "vlan", 0, "uplink add: 802.1Q VLAN id, 1..4094 (omit for untagged)")
			f.IntVar(&priority, "priority", 0, "uplink add: 802.1p priority (PCP) 0..7 of egress frames")
			f.IntVar(&u.MTU, "mtu", 0, "uplink add: link MTU")
			f.StringVar(&u.MAC, "mac", "", "uplink add: the link's Ethernet address (02:00:00:aa:bb:cc)")
			f.StringVar(&u.IPv4.Method, "method", "dhcp", "uplink add: dhcp, static, pppoe or off")
			f.StringVar(&u.IPv4.VendorClass, "vendor-class", "", "uplink add: DHCP option 60, a string or hex:...")
			f.StringVar(&u.IPv4.ClientID, "client-id", "", "uplink add: DHCP option 61: mac, none or hex:...")
			f.StringArrayVar(&options, "option", nil, "uplink add: extra DHCP option CODE=VALUE (repeatable)")
			f.IntVar(&u.IPv4.RouteMetric, "route-metric", 0, "uplink add: metric of the uplink's routes, the default route's too")
			f.BoolVar(&noDefaultRoute, "no-default-route", false, "uplink add: carry no default route, IPv4 or IPv6 (an IPTV VLAN)")
			f.StringArrayVar(&routes, "route", nil, "uplink add: static route 'TO' or 'TO via GW' on the link (repeatable)")
			f.IntVar(&u.IPv4.IGMPVersion, "igmp-version", 0, "uplink add: IGMP version 1..3 the link speaks whatever it hears")
			f.StringVar(&u.IPv4.Address, "address", "", "uplink add: static address a.b.c.d/len")
			f.StringVar(&u.IPv4.Gateway, "gateway", "", "uplink add: static gateway")
			f.StringSliceVar(&u.IPv4.DNS, "dns", nil, "uplink add: static DNS servers")
			f.StringSliceVar(&u.IPv4.Search, "search", nil, "uplink add: static DNS search domains")
			f.StringVar(&u.IPv4.User, "user", "", "uplink add: PPPoE user")
			f.BoolVar(&passwordStdin, "password-stdin", false, "uplink add: read the PPPoE or 802.1X password from stdin")
			f.StringVar(&u.IPv4.Service, "service", "", "uplink add: PPPoE service name")
			f.StringVar(&u.IPv6.Method, "ipv6", "", "uplink add: IPv6: auto (router advertisements), dhcp (DHCPv6) or off")
			f.StringVar(&u.IPv6.DHCPv6, "dhcpv6", "", "uplink add: DHCPv6 auto (as the RA's M and O flags ask), stateful, stateless or off")
			f.StringVar(&u.IPv6.AddrGenMode, "addr-gen-mode", "", "uplink add: IPv6 interface identifiers: eui64 or random")
			f.IntVar(&u.IPv6.RouteMetric, "ipv6-route-metric", 0, "uplink add: metric of the router's IPv6 default route")
			f.IntVar(&u.IPv6.EnterpriseNumber, "enterprise-number", 0, "uplink add: the vendor's IANA enterprise number of DHCPv6 options 16 and 17")
			f.StringVar(&u.IPv6.VendorClass, "ipv6-vendor-class", "", "uplink add: DHCPv6 option 16, a string or hex:...")
			f.StringArrayVar(&vendorOptions, "ipv6-vendor-option", nil, "uplink add: DHCPv6 option 17 sub-option CODE=VALUE (repeatable)")
			f.IntVar(&u.IPv6.PrefixDelegation, "prefix-delegation", 0, "uplink add: ask DHCPv6 for a delegated prefix of this length, 1..64")
			f.StringVar(&dot1x.EAP, "dot1x-eap", "", "uplink add: 802.1X before DHCP: md5 or peap")
			f.StringVar(&dot1x.Identity, "dot1x-identity", "", "uplink add: 802.1X identity")
			f.StringVar(&dot1x.AnonymousIdentity, "dot1x-anonymous-identity", "", "uplink add: PEAP's outer identity")
			f.StringVar(&dot1x.PasswordFile, "dot1x-password-file", "", "uplink add: file holding the 802.1X password (else --password-stdin)")
			f.StringVar(&dot1x.CACert, "dot1x-ca-cert", "", "uplink add: PEAP server's CA (PEM file)")
			f.StringVar(&dot1x.ClientCert, "dot1x-client-cert", "", "uplink add: the box's certificate for PEAP (PEM file)")
			f.StringVar(&dot1x.ClientKey, "dot1x-client-key", "", "uplink add: its private key (PEM file)")
		},
		Verbs: []string{"show", "apply", "renew", "uplink"},
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
				if p := linkname.LinkNameProblem(args[0]); p != "" {
					return usagef("%s", p)
				}
				_, op, err := o.client().NetRenew(ctx, args[0])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "%s: renewing (operation %d)\n", args[0], op.ID)
				return nil
			case "uplink":
				if len(args) == 0 {
					return usagef("missing verb: uplink add or uplink del")
				}
				switch args[0] {
				case "add":
					if len(args) > 1 {
						return usagef("uplink add takes flags only, not %q", args[1])
					}
					if fs.Changed("vlan") {
						u.VLAN = &vlan
					}
					if fs.Changed("priority") {
						u.Priority = &priority
					}
					var err error
					if u.IPv4.Options, err = codeValues("--option", options); err != nil {
						return err
					}
					if u.IPv6.VendorOptions, err = codeValues("--ipv6-vendor-option", vendorOptions); err != nil {
						return err
					}
					if u.IPv4.Routes, err = netRoutes(routes); err != nil {
						return err
					}
					if noDefaultRoute {
						u.IPv4.DefaultRoute = new(false)
						// IPv6 "off" takes no other key: it has no route.
						if u.IPv6.Configured() && u.IPv6.Method != network.IPv6Off {
							u.IPv6.DefaultRoute = new(false)
						}
					}
					if dot1x != (network.Dot1X{}) {
						u.Dot1X = &dot1x
					}
					if passwordStdin {
						b, err := io.ReadAll(io.LimitReader(e.Stdin, 1024))
						if err != nil {
							return fmt.Errorf("cannot read the password: %w", err)
						}
						// An 802.1X uplink is a DHCP one: it has no
						// PPPoE password.
						if pw := strings.TrimRight(string(b), "\r\n"); u.Dot1X != nil {
							u.Dot1X.Password = pw
						} else {
							u.IPv4.Password = pw
						}
					}
					// The daemon validates the whole file; this says early,
					// and by flag, what it would refuse.
					if err := (network.Config{Uplinks: []network.Uplink{u}}).Validate(); err != nil {
						var fe *network.FieldError
						if errors.As(err, &fe) {
							return usagef("%s: %s", netFlagOf(fe.Key), fe.Msg)
						}
						return usagef("%v", err)
					}
					res, op, err := o.client().NetUplinkAdd(ctx, u)
					if err != nil {
						return err
					}
					if o.JSON {
						return printJSON(e.Stdout, op)
					}
					fmt.Fprintf(e.Stdout, "added uplink %s (operation %d)\n", u.LinkName(), op.ID)
					printReloadNotes(e, res.Reload)
					return nil
				case "del":
					if len(args) != 2 {
						return usagef("uplink del takes one link name")
					}
					res, op, err := o.client().NetUplinkDel(ctx, args[1])
					if err != nil {
						return err
					}
					if o.JSON {
						return printJSON(e.Stdout, op)
					}
					fmt.Fprintf(e.Stdout, "removed uplink %s (operation %d)\n", args[1], op.ID)
					printReloadNotes(e, res.Reload)
					return nil
				}
				return usagef("unknown verb uplink %q: add or del", args[0])
			}
			return usagef("unknown verb %q", verb)
		},
	}
}

// codeValues is a repeatable CODE=VALUE flag's values by code; nil when
// the flag was not given.
func codeValues(flag string, kvs []string) (map[string]string, error) {
	var m map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q is not CODE=VALUE", flag, kv)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

// netRoutes is the --route values, each "TO" or "TO via GW" as ip route
// writes them; the validation of the uplink checks the addresses.
func netRoutes(routes []string) ([]network.RouteConfig, error) {
	var out []network.RouteConfig
	for _, r := range routes {
		f := strings.Fields(r)
		switch {
		case len(f) == 1:
			out = append(out, network.RouteConfig{To: f[0]})
		case len(f) == 3 && f[1] == "via":
			out = append(out, network.RouteConfig{To: f[0], Via: f[2]})
		default:
			return nil, usagef("--route %q is not 'TO' or 'TO via GW' (239.0.0.0/8, or 10.0.0.0/8 via 192.0.2.1)", r)
		}
	}
	return out, nil
}

// netKeyFlags are the uplink keys, indexes and option codes taken out,
// whose flag is not the key's own name ("ipv4.user" → "--user").
var netKeyFlags = map[string]string{
	"ipv4.password":       "--password-stdin",
	"ipv4.options":        "--option",
	"ipv4.default_route":  "--no-default-route",
	"ipv4.routes":         "--route",
	"ipv4.routes.to":      "--route",
	"ipv4.routes.via":     "--route",
	"ipv6.method":         "--ipv6",
	"ipv6.default_route":  "--no-default-route",
	"ipv6.route_metric":   "--ipv6-route-metric",
	"ipv6.vendor_class":   "--ipv6-vendor-class",
	"ipv6.vendor_options": "--ipv6-vendor-option",
	"dot1x":               "--dot1x-eap",
	"dot1x.password":      "--password-stdin",
}

// netFlagOf names the flag of a [network] key ("uplink[0].ipv4.user" →
// "--user", "uplink[0].ipv4.routes[1].via" → "--route").
func netFlagOf(key string) string {
	_, field, _ := strings.Cut(key, ".")
	// An option's code is any string: it goes before the indexes do.
	for _, m := range []string{"ipv4.options", "ipv6.vendor_options"} {
		if strings.HasPrefix(field, m+".") {
			field = m
		}
	}
	for {
		i := strings.IndexByte(field, '[')
		j := strings.IndexByte(field, ']')
		if i < 0 || j < i {
			break
		}
		field = field[:i] + field[j+1:]
	}
	if f, ok := netKeyFlags[field]; ok {
		return f
	}
	if d, ok := strings.CutPrefix(field, "dot1x."); ok {
		return "--dot1x-" + strings.ReplaceAll(d, "_", "-")
	}
	field = strings.TrimPrefix(strings.TrimPrefix(field, "ipv4."), "ipv6.")
	return "--" + strings.ReplaceAll(field, "_", "-")
}

// printReloadNotes prints what the reload after an edit said.
func printReloadNotes(e *Env, reload apitype.ReloadResult) {
	for _, n := range reload.Notes {
		fmt.Fprintln(e.Stderr, n)
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
		fmt.Fprintln(e.Stderr, "no wired uplinks configured ([[network.uplink]] in the config file)")
	}
	if err := printUplinks(w, v); err != nil {
		return err
	}
	printDefaultRoute(w, v.Default)
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

// printDefaultRoute says which uplink carries the internet: the default
// route the kernel uses.
func printDefaultRoute(w io.Writer, d *network.DefaultRoute) {
	if d == nil {
		fmt.Fprintf(w, "internet: no default route\n\n")
		return
	}
	whose := "not an uplink of the agent's"
	if d.Uplink != "" {
		whose = "uplink " + printable(d.Uplink)
	}
	via := ""
	if d.Gateway != "" {
		via = " via " + d.Gateway
	}
	others := ""
	if d.Others > 0 {
		others = fmt.Sprintf("; %d more default route(s) behind it", d.Others)
	}
	fmt.Fprintf(w, "internet: default route%s on %s (%s), metric %d%s\n\n", via, printable(d.Link), whose, d.Metric, others)
}

// printUplinks prints the uplinks table, the Wi-Fi link last, and each
// one's lease or session under it; nothing when there is neither.
func printUplinks(w io.Writer, v network.View) error {
	uplinks := v.Uplinks
	if v.WiFi != nil {
		uplinks = append(slices.Clip(uplinks), *v.WiFi)
	}
	if len(uplinks) == 0 {
		return nil
	}
	t := newTable(w, "UPLINK", "PARENT", "VLAN", "METHOD", "STATE", "ADDRESS", "DETAIL")
	for i, u := range uplinks {
		vlan := "-"
		if u.VLAN != nil {
			vlan = strconv.Itoa(*u.VLAN)
		}
		state, addr, method, detail := "down", "-", u.Method, u.Detail
		if u.Up {
			state = "up"
		}
		if i == len(v.Uplinks) { // the Wi-Fi link
			method = "wifi " + u.Method
			if detail == "" && u.SSID != "" {
				detail = fmt.Sprintf("ssid %q", u.SSID)
			}
		}
		switch {
		case u.DHCP != nil && u.DHCP.Lease != nil:
			addr = u.DHCP.Lease.Address.String()
		case u.PPPoE != nil && u.PPPoE.Address.IsValid():
			addr = u.PPPoE.Address.String() + " on " + u.PPPoE.Link
		}
		t.row(u.Name, netDash(u.Parent), vlan, method, state, addr, netDash(detail))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, u := range uplinks {
		printUplinkDetail(w, u)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// printUplinkDetail prints the 802.1X state, a lease's times and
// options, or a session's state, under the uplinks table.
func printUplinkDetail(w io.Writer, u network.UplinkStatus) {
	if d := u.Dot1X; d != nil {
		fmt.Fprintf(w, "\n%s: 802.1x %s", u.Name, d.State)
		if d.Method != "" {
			fmt.Fprintf(w, " (%s)", d.Method)
		}
		if !d.Since.IsZero() {
			fmt.Fprintf(w, " since %s", stamp(d.Since))
		}
		fmt.Fprintf(w, "; %d authentications, %d refused\n", d.Successes, d.Failures)
		if d.Reason != "" {
			fmt.Fprintf(w, "  reason:   %s\n", printable(d.Reason))
		}
	}
	if d := u.DHCP; d != nil {
		fmt.Fprintf(w, "\n%s: dhcp %s", u.Name, d.State)
		if d.Error != "" {
			fmt.Fprintf(w, " (%s)", d.Error)
		}
		fmt.Fprintln(w)
		if l := d.Lease; l != nil {
			fmt.Fprintf(w, "  lease:    %s from %s, router %s, dns %s\n", l.Address, l.Server, netAddr(l.Router.String()), netDNS(l))
			if search := l.SearchDomains(); len(search) > 0 {
				fmt.Fprintf(w, "  search:   %s\n", strings.Join(search, " "))
			}
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
	printIPv6(w, u)
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
