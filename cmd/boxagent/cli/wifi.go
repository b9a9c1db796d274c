package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/boxagent/boxagent/wifi"
)

func wifiCmd() *Command {
	return &Command{
		Name: "wifi", Usage: "status | scan | saved | connect SSID [--psk-stdin] [--hidden] | forget SSID | setup start|stop|status",
		Short: "show, scan and join Wi-Fi networks (wpa_supplicant)",
		Long: `connect reads the password (8 to 63 characters, or 64 hex digits) from the
first line of stdin with --psk-stdin (or --password-stdin), so it never shows
in the process list or the shell history; on a terminal it asks for it with
echo off. Without it the network is open. The password is never logged nor
returned: the journal keeps a fingerprint. saved lists the networks
wpa_supplicant holds: those of the config file ([[wifi.network]]) and those
joined since the agent started. A network joined with connect is saved in
the config file ([[wifi.network]], mode 0600) and forget removes it there
too. setup start opens the setup hotspot (boxagent-XXXX, WPA2): a phone
joins it with the password printed here and on the console, and its
captive page (http://192.168.4.1/) picks the network; setup stop closes it.

  echo 'secret password' | boxagent wifi connect home --psk-stdin`,
		Verbs: []string{"status", "scan", "saved", "connect", "forget", "setup"},
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			o.values["psk-stdin"] = fs.Bool("psk-stdin", false, "connect: read the password from stdin")
			o.values["password-stdin"] = fs.Bool("password-stdin", false, "connect: the same as --psk-stdin")
			o.values["hidden"] = fs.Bool("hidden", false, "connect: the network does not broadcast its SSID")
			o.values["security"] = fs.String("security", "", "connect: open, wpa2, wpa3 or wpa2/wpa3 (default: what the scan shows)")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) == 0 {
				return usagef("missing verb: status, scan, saved, connect, forget or setup")
			}
			verb, args := args[0], args[1:]
			switch verb {
			case "status":
				if len(args) != 0 {
					return usagef("wifi status takes no arguments")
				}
				return wifiStatus(ctx, e, o)
			case "scan":
				if len(args) != 0 {
					return usagef("wifi scan takes no arguments")
				}
				return wifiScan(ctx, e, o)
			case "saved":
				if len(args) != 0 {
					return usagef("wifi saved takes no arguments")
				}
				st, err := o.client().WiFiStatus(ctx)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, st.Known)
				}
				t := newTable(e.Stdout, "SSID", "PRIORITY", "FROM")
				for _, k := range st.Known {
					from := "joined"
					if k.Saved {
						from = "config"
					}
					t.row(k.SSID, strconv.Itoa(k.Priority), from)
				}
				return t.flush()
			case "connect":
				if len(args) != 1 {
					return usagef("wifi connect takes one SSID")
				}
				return wifiConnect(ctx, e, o, args[0])
			case "setup":
				return wifiSetup(ctx, e, o, args)
			case "forget":
				if len(args) != 1 {
					return usagef("wifi forget takes one SSID")
				}
				st, _, err := o.client().WiFiForget(ctx, args[0])
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, st)
				}
				fmt.Fprintf(e.Stderr, "forgot %q\n", args[0])
				return printWiFiStatus(e, st)
			}
			return usagef("unknown verb %q", verb)
		},
	}
}

func wifiStatus(ctx context.Context, e *Env, o *Opts) error {
	st, err := o.client().WiFiStatus(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(e.Stdout, st)
	}
	return printWiFiStatus(e, st)
}

func printWiFiStatus(e *Env, st wifi.Status) error {
	t := newTable(e.Stdout)
	t.row("interface:", st.Interface)
	t.row("state:", st.State)
	if st.SSID != "" {
		t.row("network:", fmt.Sprintf("%s (%s, %s)", st.SSID, orDash(st.Security), st.BSSID))
		t.row("channel:", fmt.Sprintf("%d MHz (%s)", st.Frequency, st.Band))
		t.row("signal:", fmt.Sprintf("%d dBm", st.Signal))
	}
	if st.Address != "" {
		t.row("address:", st.Address)
	}
	if st.Link != nil {
		t.row("link:", fmt.Sprintf("rssi %d dBm, %d Mb/s", st.Link.RSSI, st.Link.LinkSpeed))
	}
	if st.LastDisconnect != "" {
		t.row("last drop:", st.LastDisconnect)
	}
	if c := countryCell(st.Country, st.CountryConfigured); c != "" {
		t.row("country:", c)
	}
	var known []string
	for _, k := range st.Known {
		s := k.SSID
		if k.Saved {
			s += " (saved, priority " + strconv.Itoa(k.Priority) + ")"
		}
		known = append(known, s)
	}
	t.row("known:", orDash(strings.Join(known, ", ")))
	return t.flush()
}

// countryCell is the regulatory domain as wifi status shows it, with
// the configured one when the kernel has another.
func countryCell(have, want string) string {
	switch {
	case have == "" && want == "":
		return ""
	case have == want:
		return have
	case have == "":
		return want + " configured; the kernel's domain could not be read"
	}
	cell := have
	if have == "00" {
		cell += " (world)"
	}
	if want != "" {
		cell += "; [wifi] country " + want + " is not applied (boxagent doctor says why)"
	}
	return cell
}

func wifiScan(ctx context.Context, e *Env, o *Opts) error {
	bss, _, err := o.client().WiFiScan(ctx, func(msg string) {
		if !o.JSON {
			fmt.Fprintln(e.Stderr, msg)
		}
	})
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(e.Stdout, bss)
	}
	t := newTable(e.Stdout, "SSID", "SIGNAL", "MHZ", "BAND", "SECURITY", "BSSID")
	for _, b := range bss {
		ssid := b.SSID
		if ssid == "" {
			ssid = "(hidden)"
		}
		t.row(ssid, strconv.Itoa(b.Signal), strconv.Itoa(b.Frequency), orDash(b.Band), b.Security, b.BSSID)
	}
	return t.flush()
}

func wifiConnect(ctx context.Context, e *Env, o *Opts, ssid string) error {
	n := wifi.Network{SSID: ssid, Hidden: *o.values["hidden"].(*bool), Security: *o.values["security"].(*string)}
	if *o.values["psk-stdin"].(*bool) || *o.values["password-stdin"].(*bool) {
		line, err := readSecret(e, fmt.Sprintf("password for %q: ", ssid))
		if err != nil {
			return err
		}
		n.PSK = line
		if n.PSK == "" {
			return usagef("--psk-stdin read an empty password")
		}
	}
	// Refused here with the daemon's own words, before anything changes.
	if err := n.Validate(); err != nil {
		var fe *wifi.FieldError
		if errors.As(err, &fe) {
			return usagef("%s: %s", fe.Key, fe.Msg)
		}
		return usagef("%v", err)
	}
	fmt.Fprintf(e.Stderr, "joining %q...\n", ssid)
	st, _, err := o.client().WiFiConnect(ctx, n)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(e.Stdout, st)
	}
	return printWiFiStatus(e, st)
}

// readSecret reads one line from stdin; on a terminal it prompts on stderr
// and turns echo off while the user types.
func readSecret(e *Env, prompt string) (string, error) {
	if f, ok := e.Stdin.(*os.File); ok {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			fmt.Fprint(e.Stderr, prompt)
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &quiet)
			defer func() {
				unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
				fmt.Fprintln(e.Stderr)
			}()
		}
	}
	line, err := bufio.NewReader(e.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("cannot read the password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
