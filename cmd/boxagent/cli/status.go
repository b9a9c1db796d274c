package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

func jsonFlag(fs *pflag.FlagSet, o *Opts) {
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of a table")
}

func statusCmd() *Command {
	return &Command{
		Name: "status", Short: "show the agent's version, uptime, board, config and health",
		Flags: jsonFlag,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			s, err := o.client().Status(ctx)
			if err != nil {
				return err
			}
			if o.JSON {
				return printJSON(e.Stdout, s)
			}
			t := newTable(e.Stdout)
			t.row("version:", s.Version)
			t.row("uptime:", since(time.Duration(s.UptimeSeconds*float64(time.Second))))
			t.row("board:", fmt.Sprintf("%s (%s)", s.Board.ID, s.Board.Name))
			cfg := shortRev(s.Config.Revision)
			if s.Config.Default {
				cfg += " (defaults: no config file)"
			}
			t.row("config:", s.Config.Path+" "+cfg)
			t.row("socket:", s.Listeners.Socket)
			if s.Listeners.HTTPS {
				t.row("page:", "https://"+s.Listeners.HTTP+"/")
				t.row("certificate:", "SHA-256 "+s.Listeners.CertSHA256+" (self-signed: compare with what the browser shows)")
			} else {
				t.row("page:", "http://"+s.Listeners.HTTP+"/")
			}
			for _, sub := range s.Subsystems {
				line := sub.State
				if sub.Detail != "" {
					line += ": " + sub.Detail
				}
				t.row(sub.Name+":", line)
			}
			return t.flush()
		},
	}
}
