package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/boxagent/boxagent/board"
)

func boardCmd() *Command {
	return &Command{
		Name: "board", Usage: "detect | show [ID] | list", Short: "show which board profile is in effect and why, or list the known ones",
		Verbs: []string{"detect", "show", "list"},
		Flags: jsonFlag,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) == 0 {
				return usagef("missing verb: detect, show or list")
			}
			c := o.client()
			switch args[0] {
			case "detect":
				if len(args) != 1 {
					return usagef("board detect takes no arguments")
				}
				var d board.Detection
				if err := c.Board(ctx, &d); err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, d)
				}
				t := newTable(e.Stdout)
				t.row("board:", d.Profile.ID+" ("+d.Profile.Name+")")
				t.row("reason:", d.Reason)
				t.row("model:", orDash(d.Model))
				t.row("compatible:", orDash(strings.Join(d.Compatible, ", ")))
				t.row("dmi:", orDash(strings.TrimSpace(d.DMIProduct+" "+d.DMIBoard)))
				return t.flush()
			case "list", "show":
				var ps []board.Profile
				if err := c.Boards(ctx, &ps); err != nil {
					return err
				}
				if args[0] == "show" {
					return showBoard(ctx, e, o, ps, args[1:])
				}
				if o.JSON {
					return printJSON(e.Stdout, ps)
				}
				t := newTable(e.Stdout, "ID", "ARCH", "NAME", "SOURCE")
				for _, p := range ps {
					t.row(p.ID, p.Arch, p.Name, p.Source)
				}
				return t.flush()
			}
			return usagef("unknown verb %q", args[0])
		},
	}
}

// showBoard prints one profile: the given ID, or the one in effect.
func showBoard(ctx context.Context, e *Env, o *Opts, ps []board.Profile, args []string) error {
	var id string
	switch len(args) {
	case 0:
		var d board.Detection
		if err := o.client().Board(ctx, &d); err != nil {
			return err
		}
		id = d.Profile.ID
	case 1:
		id = args[0]
	default:
		return usagef("board show takes at most one ID")
	}
	p, ok := board.Find(ps, id)
	if !ok {
		return fmt.Errorf("no board profile %q; boxagent board list shows the known ones", id)
	}
	if o.JSON {
		return printJSON(e.Stdout, p)
	}
	t := newTable(e.Stdout)
	t.row("id:", p.ID)
	t.row("name:", p.Name)
	t.row("arch:", p.Arch)
	t.row("uplink:", orDash(p.Uplink))
	t.row("wifi:", orDash(p.WiFi))
	t.row("bluetooth:", orDash(p.BluetoothAdapter))
	t.row("source:", p.Source)
	return t.flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
