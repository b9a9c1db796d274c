package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/boxagent/boxagent/wifi"
)

// wifiSetup is `boxagent wifi setup start|stop|status`: the setup
// hotspot a phone joins to tell the box its network.
func wifiSetup(ctx context.Context, e *Env, o *Opts, args []string) error {
	if len(args) != 1 {
		return usagef("wifi setup takes one of start, stop, status")
	}
	c := o.client()
	switch args[0] {
	case "start":
		fmt.Fprintln(e.Stderr, "scanning, then opening the setup hotspot...")
		if _, _, err := c.WiFiSetupStart(ctx); err != nil {
			return err
		}
	case "stop":
		if _, _, err := c.WiFiSetupStop(ctx); err != nil {
			return err
		}
	case "status":
	default:
		return usagef("unknown wifi setup verb %q: start, stop or status", args[0])
	}
	// Over the unix socket the state holds the password.
	st, err := c.WiFiSetup(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(e.Stdout, st)
	}
	return printWiFiSetup(e, st)
}

func printWiFiSetup(e *Env, st wifi.SetupStatus) error {
	t := newTable(e.Stdout)
	t.row("hotspot:", st.State)
	if st.SSID != "" {
		t.row("network:", st.SSID)
		t.row("password:", orDash(st.Password))
		t.row("page:", st.URL)
		t.row("clients:", strconv.Itoa(st.Clients))
	}
	if st.SetupAfter != "" {
		t.row("opens after:", st.SetupAfter+" without a known network")
	}
	if len(st.WatchesFor) > 0 {
		t.row("gives way to:", strings.Join(st.WatchesFor, ", ")+" (closes when one is in range)")
	}
	if st.HoldsUntil != nil {
		ways := "the last give-way"
		if st.GaveWay > 1 {
			ways = fmt.Sprintf("the last %d give-ways", st.GaveWay)
		}
		t.row("holds until:", stamp(*st.HoldsUntil)+" ("+ways+" did not join), then looks for the saved networks")
	}
	if st.LastError != "" {
		t.row("last try:", st.LastSSID+": "+st.LastError)
	}
	return t.flush()
}
