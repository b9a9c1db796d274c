package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/bluetooth"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

func btCmd() *Command {
	var timeout time.Duration
	var until string
	return &Command{
		Name: "bt", Usage: "adapters | devices | show ADDR | scan [--timeout D] [--until ADDR|NAME] | pair ADDR | connect ADDR | disconnect ADDR | forget ADDR | pairable on|off [--timeout D] | power on|off | autoconnect ADDR on|off",
		Short: "find, pair, connect and forget Bluetooth headsets",
		Long: `adapters    the Bluetooth controllers
devices     the devices the adapter knows, headsets first
show ADDR   one device
scan        discover BR/EDR devices (default 10s), headsets first; --until ADDR|NAME
            stops as soon as that device is seen
pair ADDR   pair, trust and connect in one step
connect     connect a paired device
disconnect  disconnect; auto-reconnect leaves it alone until you connect it
forget ADDR remove the device and its pairing
pairable    on: let a headset pair for --timeout (default: [bluetooth] pairing_window); off: stop
power       on|off: the adapter's power
autoconnect ADDR on|off  reconnect the headset by itself at start, when it comes back and
            after a lost link; saved as [[bluetooth.headset]] auto_connect in the config file

ADDR is a Bluetooth address like 00:1B:66:AA:BB:CC.`,
		Verbs: []string{"adapters", "devices", "show", "scan", "pair", "connect", "disconnect", "forget", "pairable", "power", "autoconnect"},
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			fs.DurationVar(&timeout, "timeout", 0, "scan: how long (default 10s); pairable on: how long the window stays open")
			fs.StringVar(&until, "until", "", "scan: stop as soon as this address or name is seen")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) == 0 {
				return usagef("missing verb: adapters, devices, show, scan, pair, connect, disconnect, forget, pairable, power or autoconnect")
			}
			verb, rest := args[0], args[1:]
			switch verb {
			case "adapters", "devices", "scan":
				if len(rest) > 0 {
					return usagef("bt %s takes no arguments", verb)
				}
			case "show", "pair", "connect", "disconnect", "forget":
				if len(rest) != 1 {
					return usagef("bt %s takes one address, like 00:1B:66:AA:BB:CC", verb)
				}
				a, err := bluetooth.ParseAddress(rest[0])
				if err != nil {
					return usagef("%q is not a Bluetooth address like 00:1B:66:AA:BB:CC", rest[0])
				}
				rest[0] = a
			case "pairable", "power":
				if len(rest) != 1 || rest[0] != "on" && rest[0] != "off" {
					return usagef("bt %s takes on or off", verb)
				}
			case "autoconnect":
				if len(rest) != 2 || rest[1] != "on" && rest[1] != "off" {
					return usagef("bt autoconnect takes an address and on or off")
				}
				a, err := bluetooth.ParseAddress(rest[0])
				if err != nil {
					return usagef("%q is not a Bluetooth address like 00:1B:66:AA:BB:CC", rest[0])
				}
				rest[0] = a
			default:
				return usagef("unknown verb %q", verb)
			}
			if timeout < 0 || verb == "scan" && timeout > 0 && timeout < time.Second {
				return usagef("--timeout %s is too short", timeout)
			}
			c := o.client()
			progress := func(p journal.Progress) {
				if !o.JSON {
					fmt.Fprintln(e.Stderr, p.Message)
				}
			}
			switch verb {
			case "adapters":
				ads, err := c.BtAdapters(ctx)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, ads)
				}
				t := newTable(e.Stdout, "NAME", "ADDRESS", "ALIAS", "POWERED", "PAIRABLE", "DISCOVERABLE", "SCANNING")
				for _, a := range ads {
					t.row(a.Name, a.Address, orDash(a.Alias), btYesNo(a.Powered), btYesNo(a.Pairable), btYesNo(a.Discoverable), btYesNo(a.Discovering))
				}
				return t.flush()
			case "devices", "scan":
				var ds []bluetooth.Device
				var err error
				if verb == "scan" {
					ds, _, err = c.BtScan(ctx, timeout, until, progress)
				} else {
					ds, err = c.BtDevices(ctx)
				}
				if err != nil {
					return err
				}
				if o.JSON {
					if ds == nil {
						ds = []bluetooth.Device{}
					}
					return printJSON(e.Stdout, ds)
				}
				if len(ds) == 0 {
					fmt.Fprintln(e.Stderr, "no devices")
					return nil
				}
				printBtDevices(e, ds)
				return nil
			case "show":
				d, err := c.BtDevice(ctx, rest[0])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, d)
				}
				t := newTable(e.Stdout)
				t.row("address:", d.Address)
				t.row("name:", orDash(d.DisplayName()))
				t.row("adapter:", d.Adapter)
				t.row("class:", fmt.Sprintf("0x%06x %s", d.Class, d.Icon))
				t.row("paired:", btYesNo(d.Paired))
				t.row("trusted:", btYesNo(d.Trusted))
				t.row("connected:", btYesNo(d.Connected))
				t.row("profiles:", orDash(btProfiles(d)))
				t.row("rssi:", btRSSI(d))
				return t.flush()
			case "pair":
				d, op, err := c.BtPair(ctx, rest[0], progress)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "paired, trusted and connected %s (%s)\n", d.Address, d.DisplayName())
				return nil
			case "connect", "disconnect":
				f := c.BtConnect
				if verb == "disconnect" {
					f = c.BtDisconnect
				}
				d, op, err := f(ctx, rest[0])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "%sed %s (%s)\n", verb, d.Address, d.DisplayName())
				return nil
			case "forget":
				_, op, err := c.BtRemove(ctx, rest[0])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "forgot %s\n", rest[0])
				return nil
			case "pairable":
				res, op, err := c.BtPairable(ctx, rest[0] == "on", timeout)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				if res.Until != nil {
					fmt.Fprintf(e.Stdout, "pairing window open on %s until %s\n", res.Adapter.Name, stamp(*res.Until))
				} else {
					fmt.Fprintf(e.Stdout, "pairing window closed on %s\n", res.Adapter.Name)
				}
				return nil
			case "power":
				a, op, err := c.BtPower(ctx, "", rest[0] == "on")
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "powered %s %s\n", rest[0], a.Name)
				return nil
			case "autoconnect":
				res, op, err := c.BtAutoConnect(ctx, rest[0], rest[1] == "on")
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, op)
				}
				fmt.Fprintf(e.Stdout, "auto-connect %s for %s (saved in %s)\n", rest[1], res.Address, res.Config)
				return nil
			}
			return nil
		},
	}
}

func printBtDevices(e *Env, ds []bluetooth.Device) {
	t := newTable(e.Stdout, "ADDRESS", "NAME", "PROFILES", "PAIRED", "TRUSTED", "CONNECTED", "RSSI")
	for _, d := range ds {
		t.row(d.Address, orDash(d.DisplayName()), orDash(btProfiles(d)), btYesNo(d.Paired), btYesNo(d.Trusted), btYesNo(d.Connected), btRSSI(d))
	}
	t.flush()
}

func btProfiles(d bluetooth.Device) string {
	var p []string
	if d.A2DPSink {
		p = append(p, "a2dp")
	}
	if d.HFPHF {
		p = append(p, "hfp")
	}
	if d.HSPHS {
		p = append(p, "hsp")
	}
	if len(p) == 0 && d.Headset() {
		p = append(p, "headset")
	}
	return strings.Join(p, ",")
}

func btRSSI(d bluetooth.Device) string {
	if d.RSSI == nil {
		return "-"
	}
	return strconv.Itoa(int(*d.RSSI))
}

func btYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
