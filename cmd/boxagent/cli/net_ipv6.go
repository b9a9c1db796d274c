package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/boxagent/boxagent/network"
)

// printIPv6 prints an uplink's IPv6 under the uplinks table: its router,
// its DHCPv6 client and delegated prefix, each address with its origin
// and lifetimes, and its DNS.
func printIPv6(w io.Writer, u network.UplinkStatus) {
	v := u.IPv6
	if v == nil {
		return
	}
	fmt.Fprintf(w, "\n%s: ipv6 %s\n", u.Name, v.Method)
	if r := v.Router; r != nil {
		flags := ""
		if r.Managed {
			flags += " M"
		}
		if r.Other {
			flags += " O"
		}
		if flags == "" {
			flags = " -"
		}
		fmt.Fprintf(w, "  router:   %s flags%s, lifetime %ds, prefixes %s, heard %s\n", r.Address, flags, r.Lifetime, netDash(strings.Join(r.Prefixes, ",")), stamp(r.Seen))
	} else if v.Method != network.IPv6Off {
		fmt.Fprintf(w, "  router:   none heard yet\n")
	}
	if d := v.DHCPv6; d != nil {
		fmt.Fprintf(w, "  dhcpv6:   %s", d.Mode)
		if d.Server != "" {
			fmt.Fprintf(w, " from %s", d.Server)
		}
		if d.Error != "" {
			fmt.Fprintf(w, " (%s)", d.Error)
		}
		fmt.Fprintln(w)
		if !d.RenewAt.IsZero() {
			fmt.Fprintf(w, "  renew:    %s\n  rebind:   %s\n", stamp(d.RenewAt), stamp(d.RebindAt))
		}
		if d.Prefix != "" {
			fmt.Fprintf(w, "  delegated prefix: %s valid %s\n", d.Prefix, seconds(d.PrefixValidFor))
		}
	}
	for _, a := range v.Addresses {
		tent := ""
		if a.Tentative {
			tent = " (tentative)"
		}
		fmt.Fprintf(w, "  %-44s %-15s preferred %-8s valid %s%s\n", a.Address, a.Origin, seconds(a.PreferredFor), seconds(a.ValidFor), tent)
	}
	if len(v.DNS) > 0 || len(v.Search) > 0 {
		fmt.Fprintf(w, "  dns:      %s", netDash(strings.Join(v.DNS, ",")))
		if len(v.Search) > 0 {
			fmt.Fprintf(w, " search %s", strings.Join(v.Search, " "))
		}
		fmt.Fprintln(w)
	}
}

// seconds is a lifetime left: "forever" when it has no end.
func seconds(s *int) string {
	if s == nil {
		return "forever"
	}
	return strconv.Itoa(*s) + "s"
}
