package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

func eventsCmd() *Command {
	return &Command{
		Name: "events", Short: "follow the agent's state changes and operation progress live",
		Long: `Prints each event as it happens: its time, its type and its data. With
--json, each event is one JSON object on one line (JSON Lines), for jq or a
script reading line by line.`,
		Flags: jsonFlag,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			return o.client().Events(ctx, func(ev apitype.Event) error {
				if o.JSON {
					// One object per line: a stream is read line by line.
					line, err := json.Marshal(ev)
					if err == nil {
						_, err = fmt.Fprintf(e.Stdout, "%s\n", line)
					}
					return err
				}
				data := strings.TrimSpace(string(ev.Data))
				_, err := fmt.Fprintf(e.Stdout, "%s %-10s %s\n", stamp(ev.Time), ev.Type, data)
				return err
			})
		},
	}
}
