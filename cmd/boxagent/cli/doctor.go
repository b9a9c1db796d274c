package cli

import (
	"context"
	"fmt"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

func doctorCmd() *Command {
	return &Command{
		Name: "doctor", Short: "check the agent, its limits and the daemons it drives; one fix per problem",
		Flags: jsonFlag,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q", args[0])
			}
			d, err := o.client().Doctor(ctx)
			if err != nil {
				return err
			}
			if o.JSON {
				return printJSON(e.Stdout, d)
			}
			failed := false
			for _, c := range d.Checks {
				fmt.Fprintf(e.Stdout, "%-4s  %-22s %s\n", c.Result, c.Name, c.Detail)
				if c.Fix != "" {
					fmt.Fprintf(e.Stdout, "      %-22s fix: %s\n", "", c.Fix)
				}
				failed = failed || c.Result == apitype.CheckFail
			}
			if failed {
				return errSilent
			}
			return nil
		},
	}
}
