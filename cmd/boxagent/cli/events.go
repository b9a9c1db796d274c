package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
)

func eventsCmd() *Command {
	return &Command{
		Name: "events", Short: "follow the agent's state changes and operation progress live",
		Flags: jsonFlag,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			return o.client().Events(ctx, func(ev localapi.Event) error {
				if o.JSON {
					return printJSON(e.Stdout, ev)
				}
				data := strings.TrimSpace(string(ev.Data))
				_, err := fmt.Fprintf(e.Stdout, "%s %-10s %s\n", stamp(ev.Time), ev.Type, data)
				return err
			})
		},
	}
}
