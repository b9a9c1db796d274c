package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/firmware"
)

func fwCmd() *Command {
	return &Command{
		Name: "fw", Usage: "list | sticks | add FILE|URL [--sha256 HEX] | stage SHA [--device sdX1] | eject [--device sdX] | rollback [--device sdX1] | cancel [ID]",
		Short: "recovery packages: store, verify, stage onto a USB stick, eject, roll back",
		Long: `add imports a package (a file on the box, or an http URL on the LAN) into the
artifact store after verifying it the way the board's recovery will. stage
writes an artifact onto the USB stick under the name the board's recovery
looks for, verifies it again from the stick, and prints the board's recovery
steps; with one stick plugged in, --device is not needed. eject syncs and
unmounts the stick: pull it only then. rollback stages the package staged
before the current one, by its SHA-256. An artifact may be named by a unique
prefix of its SHA-256 (8 hex digits at least). cancel stops a running add,
stage or rollback (all of them, or the operation ID): a stalled download
ends at once.

  boxagent fw add /tmp/update.zip
  boxagent fw stage 3f2a9c01
  boxagent fw eject`,
		Verbs: []string{"list", "sticks", "add", "stage", "eject", "rollback", "cancel"},
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			o.values["device"] = fs.String("device", "", "stage, eject, rollback: the stick's partition (sda1) or disk (sda)")
			o.values["sha256"] = fs.String("sha256", "", "add: the package's expected SHA-256")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) == 0 {
				return usagef("missing verb: list, sticks, add, stage, eject, rollback or cancel")
			}
			verb, args := args[0], args[1:]
			device := *o.values["device"].(*string)
			c := o.client()
			switch verb {
			case "list", "sticks":
				if len(args) != 0 {
					return usagef("fw %s takes no arguments", verb)
				}
				st, err := c.FW(ctx)
				if err != nil {
					return err
				}
				if verb == "list" {
					return fwList(e, o, st)
				}
				return fwSticks(e, o, st)
			case "add":
				if len(args) != 1 {
					return usagef("fw add takes one FILE or URL")
				}
				req := apitype.FWAddRequest{SHA256: *o.values["sha256"].(*string)}
				if strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://") {
					req.URL = args[0]
				} else {
					p, err := filepath.Abs(args[0])
					if err != nil {
						return err
					}
					req.Path = p
				}
				a, _, err := c.FWAdd(ctx, req, newProgress(e, o, "import").update)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, a)
				}
				fmt.Fprintf(e.Stdout, "added %s (%s)%s\n", a.SHA256, size(a.Size), signedBy(a.Signer))
				return nil
			case "stage", "rollback":
				var sha string
				if verb == "stage" {
					if len(args) != 1 {
						return usagef("fw stage takes one artifact SHA-256 (boxagent fw list)")
					}
					var err error
					if sha, err = resolveArtifact(ctx, c, args[0]); err != nil {
						return err
					}
				} else if len(args) != 0 {
					return usagef("fw rollback takes no arguments")
				}
				p := newProgress(e, o, verb)
				var res firmware.StageResult
				var err error
				if verb == "stage" {
					res, _, err = c.FWStage(ctx, sha, device, p.update)
				} else {
					res, _, err = c.FWRollback(ctx, device, p.update)
				}
				p.end()
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, res)
				}
				printStaged(e.Stdout, res)
				return nil
			case "cancel":
				return fwCancel(ctx, e, c, args)
			case "eject":
				if len(args) != 0 {
					return usagef("fw eject takes no arguments")
				}
				res, _, err := c.FWEject(ctx, device)
				if err != nil {
					return err
				}
				if o.JSON {
					return printJSON(e.Stdout, res)
				}
				for _, d := range res.Unmounted {
					fmt.Fprintf(e.Stderr, "unmounted %s\n", d)
				}
				fmt.Fprintln(e.Stdout, res.Message)
				return nil
			}
			return usagef("unknown verb %q", verb)
		},
	}
}

// fwCancel cancels the operation ID, or every running firmware operation.
func fwCancel(ctx context.Context, e *Env, c *client.Client, args []string) error {
	var ids []uint64
	switch len(args) {
	case 0:
		ops, err := c.Operations(ctx, journal.Query{State: journal.StateRunning, Limit: 100})
		if err != nil {
			return err
		}
		for _, op := range ops {
			if strings.HasPrefix(op.Kind, "fw.") {
				ids = append(ids, op.ID)
			}
		}
		if len(ids) == 0 {
			return errors.New("no firmware operation is running")
		}
	case 1:
		id, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			return usagef("operation id %q is not a number", args[0])
		}
		ids = append(ids, id)
	default:
		return usagef("fw cancel takes at most one operation ID")
	}
	for _, id := range ids {
		if err := c.CancelOperation(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "cancelling operation %d\n", id)
	}
	return nil
}

// resolveArtifact expands a unique SHA-256 prefix.
func resolveArtifact(ctx context.Context, c *client.Client, arg string) (string, error) {
	arg = strings.ToLower(strings.TrimSpace(arg))
	if len(arg) == 64 {
		return arg, nil
	}
	if len(arg) < 8 {
		return "", usagef("%q: give the SHA-256, or 8 hex digits of it at least", arg)
	}
	st, err := c.FW(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, a := range st.Artifacts {
		if strings.HasPrefix(a.SHA256, arg) {
			found = append(found, a.SHA256)
		}
	}
	switch len(found) {
	case 0:
		// Not a usage error: the SHA-256 may well be right, of a package
		// that fw add refused (a refused package never enters the store).
		return "", fmt.Errorf("no artifact in the store starts with %s: boxagent fw list shows them; a package fw add refused is not among them (boxagent history --kind fw.add says why)", arg)
	case 1:
		return found[0], nil
	}
	return "", usagef("%s names %d artifacts: give more digits", arg, len(found))
}

func fwList(e *Env, o *Opts, st apitype.FWStatus) error {
	if o.JSON {
		return printJSON(e.Stdout, st.Artifacts)
	}
	if len(st.Artifacts) == 0 {
		fmt.Fprintln(e.Stderr, "no artifacts yet: boxagent fw add FILE")
		return nil
	}
	t := newTable(e.Stdout, "SHA256", "SIZE", "SIGNER", "ADDED", "STAGED")
	for _, a := range st.Artifacts {
		staged := "-"
		if n := len(a.Staged); n > 0 {
			last := a.Staged[n-1]
			staged = stamp(last.Time) + " " + orDashFW(last.Serial)
			if st.Staged != nil && st.Staged.SHA256 == a.SHA256 {
				staged += " (current)"
			}
		}
		signer := "-"
		if a.Signer != nil {
			signer = orDashFW(a.Signer.Subject)
		}
		t.row(a.SHA256[:16], size(a.Size), signer, stamp(a.Added), staged)
	}
	return t.flush()
}

func fwSticks(e *Env, o *Opts, st apitype.FWStatus) error {
	if o.JSON {
		return printJSON(e.Stdout, st.Sticks)
	}
	if len(st.Sticks) == 0 {
		fmt.Fprintln(e.Stderr, "no USB stick plugged in")
		return nil
	}
	t := newTable(e.Stdout, "DEVICE", "SIZE", "FS", "LABEL", "SERIAL", "MODEL", "NOTE")
	for _, s := range st.Sticks {
		model := orDashFW(strings.TrimSpace(s.Vendor + " " + s.Model))
		note := s.Problem
		if s.ReadOnly {
			note = "write-protected"
		}
		if len(s.Disk.Partitions) == 0 {
			t.row(s.Name, size(s.Size), "-", "-", orDashFW(s.Serial), model, orDashFW(note+" no filesystem ("+s.Disk.Scheme+")"))
			continue
		}
		for _, p := range s.Disk.Partitions {
			t.row(s.PartitionDevice(p), size(p.Size), orDashFW(p.FS), orDashFW(p.Label), orDashFW(s.Serial), model, orDashFW(note))
		}
	}
	return t.flush()
}

func printStaged(w io.Writer, r firmware.StageResult) {
	model := strings.TrimSpace(r.Stick.Vendor + " " + r.Stick.Model)
	fmt.Fprintf(w, "staged %s (%s) as %s on %s (%s, serial %s, %s %q)\n", r.Artifact, size(r.Size), r.Path, r.Stick.Device,
		orDashFW(model), orDashFW(r.Stick.Serial), strings.ToUpper(r.Stick.Filesystem), r.Stick.Label)
	fmt.Fprintf(w, "verified from the stick%s; write %.1fs, verify %.1fs\n", signedBy(r.Signer), r.WriteSeconds, r.VerifySeconds)
	if len(r.Cleaned) > 0 {
		fmt.Fprintf(w, "removed leftovers of an interrupted staging: %s\n", strings.Join(r.Cleaned, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w, "run 'boxagent fw eject' before pulling the stick.")
	if r.Instructions != "" {
		fmt.Fprintf(w, "\nAt the box (board %s):\n%s\n", r.Board, r.Instructions)
	}
}

func signedBy(s *firmware.Signer) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf(", signed by %q (%s %s)", s.Subject, s.Key, s.Digest)
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return strconv.FormatInt(n, 10) + "B"
}

func orDashFW(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// progress shows a long operation: a bar redrawn in place on a terminal,
// a percentage line every 5 % on a serial console or in a pipe, nothing
// with --json.
type progress struct {
	w        io.Writer
	bar      bool
	off      bool
	what     string
	lastPct  int
	lastDraw time.Time
	drawn    bool
}

func newProgress(e *Env, o *Opts, what string) *progress {
	term := e.Terminal && e.Getenv("TERM") != "dumb" && e.Getenv("TERM") != ""
	return &progress{w: e.Stderr, bar: term, off: o.JSON, what: what, lastPct: -100}
}

const barWidth = 30

func (p *progress) update(pr journal.Progress) {
	if p.off {
		return
	}
	if pr.Total <= 0 {
		if pr.Message != "" && !p.bar {
			fmt.Fprintln(p.w, pr.Message)
		}
		return
	}
	pct := int(pr.Done * 100 / pr.Total)
	if p.bar {
		if time.Since(p.lastDraw) < 100*time.Millisecond && pr.Done != pr.Total {
			return
		}
		p.lastDraw = time.Now()
		n := int(pr.Done * barWidth / pr.Total)
		fmt.Fprintf(p.w, "\r[%s%s] %3d%% %-60.60s", strings.Repeat("#", n), strings.Repeat(".", barWidth-n), pct, pr.Message)
		p.drawn = true
		return
	}
	if pct/5 == p.lastPct/5 && pct != 100 || pct == p.lastPct {
		return
	}
	p.lastPct = pct
	fmt.Fprintf(p.w, "%s: %d%% %s\n", p.what, pct, pr.Message)
}

// end finishes the bar's line.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
