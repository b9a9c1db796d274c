package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

func historyCmd() *Command {
	var q journal.Query
	var state string
	return &Command{
		Name: "history", Usage: "[ID]", Short: "list journalled operations, or show one with its settings snapshot",
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			fs.IntVarP(&q.Limit, "limit", "n", 20, "how many operations to list")
			fs.StringVar(&q.Kind, "kind", "", "only operations of this kind (e.g. config.reload)")
			fs.StringVar(&q.Origin, "origin", "", "only operations from cli, web, provision, auto or fleet")
			fs.StringVar(&state, "state", "", "only operations in this state (running, done, failed, cancelled, interrupted)")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			switch len(args) {
			case 0:
			case 1:
				id, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return usagef("operation id %q is not a number", args[0])
				}
				return showOperation(ctx, e, o, id)
			default:
				return usagef("too many arguments")
			}
			q.State = journal.State(state)
			ops, err := o.client().Operations(ctx, q)
			if err != nil {
				return err
			}
			if o.JSON {
				return printJSON(e.Stdout, ops)
			}
			if len(ops) == 0 {
				fmt.Fprintln(e.Stderr, "no operations yet")
				return nil
			}
			t := newTable(e.Stdout, "ID", "STARTED", "ORIGIN", "KIND", "STATE", "SUMMARY")
			for _, op := range ops {
				t.row(strconv.FormatUint(op.ID, 10), stamp(op.Started), string(op.Origin), op.Kind, string(op.State), op.Summary)
			}
			return t.flush()
		},
	}
}

func showOperation(ctx context.Context, e *Env, o *Opts, id uint64) error {
	op, err := o.client().Operation(ctx, id)
	if err != nil {
		return err
	}
	if o.JSON {
		return printJSON(e.Stdout, op)
	}
	w := e.Stdout
	fmt.Fprintf(w, "operation %d: %s (%s)\n", op.ID, op.Kind, op.Summary)
	fmt.Fprintf(w, "origin:    %s\n", op.Origin)
	fmt.Fprintf(w, "state:     %s\n", op.State)
	fmt.Fprintf(w, "started:   %s\n", stamp(op.Started))
	if op.Ended != nil {
		fmt.Fprintf(w, "ended:     %s (%s)\n", stamp(*op.Ended), op.Ended.Sub(op.Started).Round(1e6))
	}
	if len(op.Request) > 0 && string(op.Request) != "null" {
		fmt.Fprintf(w, "request:   %s\n", op.Request)
	}
	if op.Error != nil {
		fmt.Fprintf(w, "error:     %s (%s)\n", op.Error.Message, op.Error.Code)
		if op.Error.Hint != "" {
			fmt.Fprintf(w, "hint:      %s\n", op.Error.Hint)
		}
	}
	if len(op.Result) > 0 {
		fmt.Fprintf(w, "result:    %s\n", indentJSON(op.Result))
	}
	fmt.Fprintf(w, "settings:  revision %s, board %s\n", shortRev(op.Snapshot.Revision), op.Snapshot.Board)
	if len(op.Snapshot.Config) > 0 {
		fmt.Fprintf(w, "           %s\n", indentJSON(op.Snapshot.Config))
	}
	for _, p := range op.Progress {
		line := p.Message
		if p.Total > 0 {
			line = fmt.Sprintf("%s (%d/%d)", line, p.Done, p.Total)
		}
		fmt.Fprintf(w, "progress:  %s %s\n", stamp(p.Time), line)
	}
	return nil
}

// indentJSON lines a JSON value up under the labels of showOperation.
func indentJSON(raw []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "           ", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}
