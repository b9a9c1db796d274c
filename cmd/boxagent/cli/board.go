package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
)

func boardCmd() *Command {
	return &Command{
		Name: "board", Usage: "detect | show [ID] | list", Short: "show which board profile is in effect and why, or list the known ones",
		Long: `The running agent answers. When it is not running (the moment these are
needed most: serve will not start), they are worked out here, from the
embedded profiles and /etc/boxagent/boards, the config file's board and
this machine, with a note on stderr.`,
		Verbs: []string{"detect", "show", "list"},
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			fs.StringVar(&o.Root, "root", "", "without the agent: its --root (profiles and config)")
		},
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
				d, err := detection(ctx, e, o)
				if err != nil {
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
				ps, err := c.Boards(ctx)
				if errors.Is(err, client.ErrUnreachable) {
					offlineNote(e)
					ps, err = board.LoadAll(paths.Paths{Root: o.Root}.BoardsDir())
				}
				if err != nil {
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

// detection is the agent's board detection or, when the agent is not
// running, the one it would make: the same profiles, the config file's
// board ("auto" when the file is missing or invalid: serve would say why),
// this machine's device tree and DMI.
func detection(ctx context.Context, e *Env, o *Opts) (board.Detection, error) {
	d, err := o.client().Board(ctx)
	if !errors.Is(err, client.ErrUnreachable) {
		return d, err
	}
	offlineNote(e)
	p := paths.Paths{Root: o.Root}
	profiles, err := board.LoadAll(p.BoardsDir())
	if err != nil {
		return d, err
	}
	want := "auto"
	if cfg, err := config.Load(p.ConfigFile()); err == nil && cfg.Board != "" {
		want = cfg.Board
	}
	return board.Detect(os.DirFS(p.Host("/")), profiles, want, runtime.GOARCH)
}

func offlineNote(e *Env) {
	fmt.Fprintln(e.Stderr, "boxagent: the agent is not running: worked out here from the profiles and the config file")
}

// showBoard prints one profile: the given ID, or the one in effect.
func showBoard(ctx context.Context, e *Env, o *Opts, ps []board.Profile, args []string) error {
	var id string
	switch len(args) {
	case 0:
		d, err := detection(ctx, e, o)
		if err != nil {
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
	f := p.Firmware
	if f.IsZero() {
		t.row("firmware:", "-")
		return t.flush()
	}
	t.row("firmware:", f.Method)
	if f.Method == board.FirmwareUSBStick {
		files := strings.Join(append([]string{f.Package}, f.ExtraFiles...), ", ")
		fsName := f.Filesystem
		if fsName == "vfat" {
			fsName = "FAT32 (vfat)"
		}
		t.row("  package:", files+" at the root of a "+fsName+" stick")
		keys := ", keys from the config's [firmware] keys"
		if len(f.Keys) > 0 {
			keys = ", keys " + strings.Join(f.Keys, ", ")
		}
		if f.Verify == "sha256" || f.Verify == "none" {
			keys = ""
		}
		t.row("  verify:", f.Verify+keys)
		t.row("  entries:", orDash(strings.Join(f.RequiredEntries, ", ")))
		wait := "until the user chooses (menu)"
		if f.WaitSeconds > 0 {
			wait = fmt.Sprintf("%d s for the stick", f.WaitSeconds)
		}
		t.row("  waits:", wait)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, x := range []struct{ title, text string }{{"instructions", f.Instructions}, {"rollback", f.Rollback}} {
		if strings.TrimSpace(x.text) == "" {
			continue
		}
		fmt.Fprintf(e.Stdout, "\n%s:\n", x.title)
		for _, line := range strings.Split(strings.TrimSpace(x.text), "\n") {
			fmt.Fprintf(e.Stdout, "  %s\n", line)
		}
	}
	return nil
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
